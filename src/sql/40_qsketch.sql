-- ---------------------------------------------------------------------------
-- smartetl.qsketch: a mergeable quantile sketch with relative error at most
-- 0.5 % per quantile (src/kpi/qsketch_core.h), for KPI rollups whose
-- percentiles can be combined over any range.
-- ---------------------------------------------------------------------------

-- API: Public
CREATE TYPE smartetl.qsketch;
CREATE FUNCTION smartetl._qsketch_in(cstring) RETURNS smartetl.qsketch
AS 'MODULE_PATHNAME', 'qsketch_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_out(smartetl.qsketch) RETURNS cstring
AS 'MODULE_PATHNAME', 'qsketch_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_recv(internal) RETURNS smartetl.qsketch
AS 'MODULE_PATHNAME', 'qsketch_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_send(smartetl.qsketch) RETURNS bytea
AS 'MODULE_PATHNAME', 'qsketch_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE smartetl.qsketch (
    INPUT = smartetl._qsketch_in,
    OUTPUT = smartetl._qsketch_out,
    RECEIVE = smartetl._qsketch_recv,
    SEND = smartetl._qsketch_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE smartetl.qsketch IS 'mergeable quantile sketch (DDSketch-style log buckets), relative error <= 0.5 % per quantile; text form is JSON';

-- API: Private (aggregate support)
CREATE FUNCTION smartetl._qsketch_add(internal, double precision) RETURNS internal
AS 'MODULE_PATHNAME', 'qsketch_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_add_sketch(internal, smartetl.qsketch) RETURNS internal
AS 'MODULE_PATHNAME', 'qsketch_add_sketch' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'qsketch_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'qsketch_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'qsketch_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION smartetl._qsketch_final(internal) RETURNS smartetl.qsketch
AS 'MODULE_PATHNAME', 'qsketch_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- API: Public
CREATE AGGREGATE smartetl.qsketch_agg(double precision) (
    SFUNC = smartetl._qsketch_add,
    STYPE = internal,
    FINALFUNC = smartetl._qsketch_final,
    COMBINEFUNC = smartetl._qsketch_combine,
    SERIALFUNC = smartetl._qsketch_serialize,
    DESERIALFUNC = smartetl._qsketch_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE smartetl.qsketch_agg(double precision) IS 'sketch of the values: NULLs skipped, NaN counted but not ranked, infinities ranked at the ends';

-- API: Public
CREATE AGGREGATE smartetl.qsketch_merge(smartetl.qsketch) (
    SFUNC = smartetl._qsketch_add_sketch,
    STYPE = internal,
    FINALFUNC = smartetl._qsketch_final,
    COMBINEFUNC = smartetl._qsketch_combine,
    SERIALFUNC = smartetl._qsketch_serialize,
    DESERIALFUNC = smartetl._qsketch_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE smartetl.qsketch_merge(smartetl.qsketch) IS 'one sketch of all the sketches'' values (rollups over any range)';

-- API: Public
CREATE FUNCTION smartetl.quantile(smartetl.qsketch, double precision) RETURNS double precision
AS 'MODULE_PATHNAME', 'qsketch_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.quantile(smartetl.qsketch, double precision) IS 'percentile_cont-style quantile p in [0, 1]: exact min at 0 and max at 1, relative error <= 0.5 % between';

-- API: Public
CREATE FUNCTION smartetl.quantiles(smartetl.qsketch, double precision[]) RETURNS double precision[]
AS 'MODULE_PATHNAME', 'qsketch_quantiles' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.quantiles(smartetl.qsketch, double precision[]) IS 'quantile() for each fraction of the array';

-- API: Public
CREATE FUNCTION smartetl.qsketch_count(smartetl.qsketch) RETURNS bigint
AS 'MODULE_PATHNAME', 'qsketch_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.qsketch_count(smartetl.qsketch) IS 'number of ranked values (NaN excluded)';

-- API: Public
CREATE FUNCTION smartetl.qsketch_mean(smartetl.qsketch) RETURNS double precision
AS 'MODULE_PATHNAME', 'qsketch_mean' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.qsketch_mean(smartetl.qsketch) IS 'exact mean of the finite values';

-- API: Public
CREATE FUNCTION smartetl.qsketch_combine(smartetl.qsketch, smartetl.qsketch) RETURNS smartetl.qsketch
AS 'MODULE_PATHNAME', 'qsketch_combine2' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION smartetl.qsketch_combine(smartetl.qsketch, smartetl.qsketch) IS 'one sketch of both sketches'' values (NULL counts as empty)';

-- dbt run_results.json: invocation as parent run, node results as child runs.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
SELECT * FROM smartetl.ingest('dbt', $${
  "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
               "dbt_version": "1.9.0", "generated_at": "2024-05-01T03:00:10Z",
               "invocation_id": "inv-1"},
  "elapsed_time": 10.5,
  "results": [
    {"status": "success", "unique_id": "model.shop.orders", "execution_time": 4.2, "thread_id": "Thread-1",
     "timing": [{"name": "compile", "started_at": "2024-05-01T03:00:00Z", "completed_at": "2024-05-01T03:00:01Z"},
                {"name": "execute", "started_at": "2024-05-01T03:00:01Z", "completed_at": "2024-05-01T03:00:05.2Z"}],
     "adapter_response": {"rows_affected": 1200}, "message": "SELECT 1200", "failures": null},
    {"status": "fail", "unique_id": "test.shop.not_null_orders_id.abc123", "execution_time": 0.3,
     "timing": [], "adapter_response": {}, "message": "Got 3 results, configured to fail if != 0", "failures": 3},
    {"status": "skipped", "unique_id": "model.shop.revenue", "execution_time": 0, "timing": [],
     "adapter_response": {}, "message": null, "failures": null}
  ]}$$);
SELECT p.name, r.external_id, r.status, r.started_at, r.duration, r.rows_written, r.error_message,
       r.attrs->>'dbt_status' AS dbt_status, pr.external_id AS parent
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
LEFT JOIN smartetl.run pr ON pr.run_id = r.parent_run_id
WHERE p.namespace = 'dbt' ORDER BY r.parent_run_id NULLS FIRST, p.name;

-- errors
SELECT * FROM smartetl.ingest('dbt', E'{"metadata": {"invocation_id": "x"},\n "results": [\n');
SELECT * FROM smartetl.ingest('dbt', '{"nodes": {}}');

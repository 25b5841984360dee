-- logline and parse_log: Loghub-style format strings into log events.
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
SET datestyle = 'ISO, YMD';

-- the Loghub format strings, escaped brackets and optional groups included
-- (the lines are hand-made in each system's shape)
SELECT smartetl.parse_log('081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38 terminating',
                          '<Date> <Time> <Pid> <Level> <Component>: <Content>');
SELECT smartetl.parse_log('2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster',
                          '<Date> <Time> <Level> \[<Process>\] <Component>: <Content>');
SELECT smartetl.parse_log('2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200',
                          '<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>');
SELECT smartetl.parse_log('Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; uid=0',
                          '<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>');
SELECT smartetl.parse_log('Jun 15 04:06:18 combo su: session opened for user cyrus',
                          '<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>');
SELECT smartetl.parse_log('[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties',
                          '\[<Time>\] \[<Level>\] <Content>');
SELECT smartetl.parse_log('not an apache line', '\[<Time>\] \[<Level>\] <Content>');
-- a blank given back by a whitespace run to an empty header, as Python's re does
-- (found by the differential fuzzer: the separator scan alone missed it)
SELECT smartetl.parse_log('2024-05123 INFO  [main] etl.Loader: loading orders',
                          '<Date> <Time> <Level> \[<Thread>\] <Component>: <Content>');

-- bad format strings are rejected with the position
SELECT smartetl.parse_log('x', 'no headers at all');
SELECT smartetl.parse_log('x', '<A> <A>');
SELECT smartetl.parse_log('x', '<A> (<B>');

-- ingestion: multi-line entries (stack traces) attach to the line that started them
SELECT * FROM smartetl.ingest('logline', $$2024-05-01 10:00:00,123 INFO  [main] etl.Loader: loading orders
2024-05-01 10:00:01,500 ERROR [main] etl.Loader: load failed
java.lang.IllegalStateException: duplicate key 42
	at etl.Loader.insert(Loader.java:88)
	at etl.Loader.run(Loader.java:12)
2024-06-01 00:00:02,000 INFO  [main] etl.Loader: done
$$, '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>", "pipeline": "orders_loader", "source": "loader.log"}');
SELECT line_no, ts, level, component, message, attrs, tableoid::regclass AS partition
FROM smartetl.log_event WHERE source = 'loader.log' ORDER BY line_no;

-- re-ingest adds nothing; a grown file adds only its new lines
SELECT * FROM smartetl.ingest('logline', $$2024-05-01 10:00:00,123 INFO  [main] etl.Loader: loading orders
2024-05-01 10:00:01,500 ERROR [main] etl.Loader: load failed
java.lang.IllegalStateException: duplicate key 42
	at etl.Loader.insert(Loader.java:88)
	at etl.Loader.run(Loader.java:12)
2024-06-01 00:00:02,000 INFO  [main] etl.Loader: done
2024-06-01 00:00:03,000 WARN  [main] etl.Loader: slow commit
$$, '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>", "pipeline": "orders_loader", "source": "loader.log"}');

-- events attach to a run named by run_id
SELECT * FROM smartetl.ingest('csv', E'job,run_id,status\norders_loader,r9,failed\n');
SELECT * FROM smartetl.ingest('logline', E'2024-05-02 10:00:00,000 ERROR [main] etl.Loader: boom\n',
  '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>", "pipeline": "orders_loader", "run_id": "r9", "source": "r9.log"}');
SELECT r.external_id, e.message FROM smartetl.log_event e JOIN smartetl.run r USING (run_id);

-- epoch timestamps (HPC/BGL style) and a to_timestamp pattern (Spark style)
SELECT * FROM smartetl.ingest('logline', E'2561 node-1 unix.hw state_change.unavailable 1077804742 1 Component State Change\n',
  '{"log_format": "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>", "source": "hpc.log"}');
SELECT * FROM smartetl.ingest('logline', E'17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers\n',
  '{"log_format": "<Date> <Time> <Level> <Component>: <Content>", "timestamp_format": "YY/MM/DD HH24:MI:SS", "source": "spark.log"}');
SELECT source, ts, component, message FROM smartetl.log_event WHERE source IN ('hpc.log', 'spark.log') ORDER BY 1;

-- a first line that matches nothing is an error; quarantine keeps the rest
SELECT * FROM smartetl.ingest('logline', E'garbage first line\n2024-05-02 10:00:00,000 INFO [m] c: ok\n',
  '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>"}');
SELECT * FROM smartetl.ingest('logline', E'garbage first line\n2024-05-02 10:00:00,000 INFO [m] c: ok\n',
  '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>", "on_error": "quarantine", "source": "g.log"}');
SELECT line_no, raw, reason FROM smartetl.ingest_reject WHERE source = 'g.log';

-- retention drops whole partitions
SELECT smartetl.drop_log_partitions('2024-06-01');
SELECT count(*) FROM smartetl.log_event WHERE source = 'loader.log';

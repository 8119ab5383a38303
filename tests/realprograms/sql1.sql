-- 1 million rows built with a recursive CTE (deterministic keys), two
-- indexes, aggregates, a self-join, an update and a delete.
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, s TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000000)
INSERT INTO t SELECT i, hex((i * 2654435761) % 4294967296), i % 1000,
                     substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26, 1 + i % 7)
FROM c;
CREATE INDEX tk ON t(k);
CREATE INDEX tv ON t(v, s);
SELECT count(*), sum(v), count(DISTINCT s) FROM t;
SELECT v, count(*), sum(length(k)), max(s) FROM t GROUP BY v ORDER BY v LIMIT 10;
SELECT s, count(*) FROM t GROUP BY s ORDER BY count(*) DESC, s LIMIT 10;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.v < 100;
UPDATE t SET s = upper(s) WHERE v % 7 = 0;
DELETE FROM t WHERE v % 5 = 0;
SELECT count(*), group_concat(s, '') FROM (SELECT s FROM t ORDER BY k LIMIT 50);
SELECT k, v FROM t WHERE k LIKE 'A%' ORDER BY k LIMIT 5;

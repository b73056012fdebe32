// The `tally` executable allocates through jemalloc (Debian's libjemalloc-dev, linked by this
// target), as ClickHouse does. Under HTTP ingest glibc's malloc cost ~9.5 % of the server's CPU
// plus ~6 % waiting on its arena locks (perf); with jemalloc and these options the server took
// 131–136k events/s against 103–114k (`tally bench ingest --spawn --connections 64 --batch 100
// --duration 15`, 3 alternated runs, BENCHMARKS.md).
//
// jemalloc reads this string at start (MALLOC_CONF in the environment still overrides it):
// - narenas:2 — one arena per core of the 2-core machine Tally is sized for, instead of 4 per
//   core: fewer half-used arenas, lower RSS, and threads' caches keep them from contending.
//   On a bigger machine, raise it with MALLOC_CONF=narenas:N (N = cores) in the environment;
// - dirty_decay_ms:1000, muzzy_decay_ms:0 — freed pages go back to the OS after a second
//   instead of ten, so a flush's or a merge's transient buffers do not stay resident.
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";

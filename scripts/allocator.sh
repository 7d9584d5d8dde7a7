# Sourced by scripts/run.sh, run_dagster.sh and test.sh (and read by benchmarks/vs_official.py):
# preloads tcmalloc, which keeps freed memory for reuse. glibc hands every block of tens of MiB back
# to the OS and takes it afresh, zeroed and page-faulted, at the next allocation: the unrolled
# inner loop at width 128 ran 1.95x faster and expert training 1.13x with tcmalloc than with glibc
# and huge pages (docs/benchmarks.md, `benchmarks/bench.py --only allocators`).
# DDFORGE_ALLOCATOR=glibc keeps glibc; an LD_PRELOAD you set is left alone.
if [ "${DDFORGE_ALLOCATOR:-tcmalloc}" = tcmalloc ] && [ -z "${LD_PRELOAD:-}" ]; then
  ddforge_tcmalloc="/usr/lib/$(uname -m)-linux-gnu/libtcmalloc_minimal.so.4"
  if [ -f "$ddforge_tcmalloc" ]; then
    export LD_PRELOAD="$ddforge_tcmalloc"
  else
    echo "note: $ddforge_tcmalloc not found (apt-get install libtcmalloc-minimal4): glibc's allocator," \
         "up to 2x slower for distillation at IPC >= 10 (docs/benchmarks.md)" >&2
  fi
  unset ddforge_tcmalloc
fi

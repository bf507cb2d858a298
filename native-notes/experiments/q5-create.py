import os, sys
m = sys.argv[1]
def tryit(name, fn):
    try: r = fn(); print(f"  {name}: ok {r!r}", flush=True)
    except OSError as e: print(f"  {name}: errno {e.errno} {e.strerror}", flush=True)
    print(f"MARK {name}", file=open(sys.argv[2], "a"), flush=True)
tryit("open(new, O_CREAT|O_WRONLY, 0640)", lambda: os.close(os.open(f"{m}/a", os.O_CREAT | os.O_WRONLY, 0o640)))
tryit("open(existing, O_CREAT|O_EXCL|O_WRONLY)", lambda: os.close(os.open(f"{m}/a", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)))
tryit("open(new, O_CREAT|O_EXCL|O_WRONLY, 0600)", lambda: os.close(os.open(f"{m}/b", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)))
tryit("open(new, O_CREAT|O_TRUNC|O_APPEND|O_RDWR, 0644)", lambda: os.close(os.open(f"{m}/c", os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_RDWR, 0o644)))
with open(f"{m}/d", "w") as f: f.write("0123456789")
tryit("open(existing, O_TRUNC|O_WRONLY)", lambda: os.close(os.open(f"{m}/d", os.O_TRUNC | os.O_WRONLY)))
tryit("open(existing, O_APPEND|O_WRONLY)", lambda: os.close(os.open(f"{m}/d", os.O_APPEND | os.O_WRONLY)))
tryit("mknod fifo", lambda: os.mkfifo(f"{m}/fifo"))
fd = os.open(f"{m}/e", os.O_CREAT | os.O_RDWR, 0o644)
tryit("posix_fallocate(fd,0,1MiB)", lambda: os.posix_fallocate(fd, 0, 1 << 20))
tryit("fstat size after posix_fallocate", lambda: os.fstat(fd).st_size)
os.close(fd)

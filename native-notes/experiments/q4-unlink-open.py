import os, sys
m = sys.argv[1]
p = f"{m}/f"
with open(p, "w") as f: f.write("hello")
fd = os.open(p, os.O_RDWR)
print("  open ok")
os.unlink(p); print("  unlink ok; listdir:", os.listdir(m))
def tryit(name, fn):
    try: r = fn(); print(f"  {name}: ok {r!r}")
    except OSError as e: print(f"  {name}: errno {e.errno} ({os.strerror(e.errno)})")
tryit("pwrite after unlink", lambda: os.pwrite(fd, b"WORLD", 5))
tryit("pread after unlink", lambda: os.pread(fd, 20, 0))
tryit("fstat after unlink", lambda: (os.fstat(fd).st_size, os.fstat(fd).st_nlink))
tryit("ftruncate after unlink", lambda: os.ftruncate(fd, 3))
tryit("fsync after unlink", lambda: os.fsync(fd))
tryit("fchmod after unlink", lambda: os.fchmod(fd, 0o600))
os.close(fd); print("  closed; listdir:", os.listdir(m))

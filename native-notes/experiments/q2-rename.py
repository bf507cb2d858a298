# Q2b client: run ops concurrently with a delayed rename (or delayed write) and time them.
# usage: python3 q2-rename.py MNT CTL MODE   MODE=rename-delayed | write-delayed
import os, sys, time, threading, json
m, ctl, mode = sys.argv[1:4]
os.makedirs(f"{m}/d", exist_ok=True); os.makedirs(f"{m}/d2", exist_ok=True)
for n in ("d/src", "d/other", "d2/x"):
    with open(f"{m}/{n}", "w") as f: f.write("hello")
fd_src = os.open(f"{m}/d/src", os.O_RDWR)
fd_other = os.open(f"{m}/d/other", os.O_RDWR)
res = {}
t0 = None
def run(name, fn):
    try: fn(); r = "ok"
    except Exception as e: r = type(e).__name__ + ":" + str(e.errno if hasattr(e, 'errno') else e)
    res[name] = (round((time.monotonic() - t0) * 1000), r)
probes = {
  "write fd_src": lambda: os.pwrite(fd_src, b"W", 0),
  "fstat fd_src": lambda: os.fstat(fd_src),
  "stat d/src": lambda: os.stat(f"{m}/d/src"),
  "stat d (parent)": lambda: os.stat(f"{m}/d"),
  "write fd_other": lambda: os.pwrite(fd_other, b"W", 0),
  "stat d/other": lambda: os.stat(f"{m}/d/other"),
  "create d/new": lambda: os.close(os.open(f"{m}/d/new", os.O_CREAT | os.O_WRONLY)),
  "listdir d": lambda: os.listdir(f"{m}/d"),
  "stat d2/x (unrelated)": lambda: os.stat(f"{m}/d2/x"),
}
if mode == "rename-delayed":
    open(ctl, "w").write(json.dumps({"DELAY_RENAME": 2000}))
    first = ("rename d/src->d/dst", lambda: os.rename(f"{m}/d/src", f"{m}/d/dst"))
elif mode == "dirrename-delayed":
    open(ctl, "w").write(json.dumps({"DELAY_RENAME": 2000}))
    first = ("rename dir d->d3", lambda: os.rename(f"{m}/d", f"{m}/d3"))
    probes = {"write fd_src (file inside d)": lambda: os.pwrite(fd_src, b"W", 0),
              "fstat fd_other (inside d)": lambda: os.fstat(fd_other),
              "stat / (grandparent)": lambda: os.stat(f"{m}"),
              "stat d2/x (unrelated)": lambda: os.stat(f"{m}/d2/x")}
elif mode == "dirrename-write-delayed":
    open(ctl, "w").write(json.dumps({"DELAY_WRITE": 2000}))
    first = ("write fd_src (delayed, file inside d)", lambda: os.pwrite(fd_src, b"W", 0))
    probes = {"rename dir d->d3": lambda: os.rename(f"{m}/d", f"{m}/d3")}
else:
    open(ctl, "w").write(json.dumps({"DELAY_WRITE": 2000}))
    first = ("write fd_src (delayed)", lambda: os.pwrite(fd_src, b"W", 0))
    probes = {"rename d/src->d/dst": lambda: os.rename(f"{m}/d/src", f"{m}/d/dst"),
              "fstat fd_src": lambda: os.fstat(fd_src),
              "stat d (parent)": lambda: os.stat(f"{m}/d"),
              "write fd_other (delayed too)": lambda: os.pwrite(fd_other, b"W", 0)}
print("MARK", flush=True)
time.sleep(0.1)
t0 = time.monotonic()
a = threading.Thread(target=run, args=first); a.start()
time.sleep(0.3)
ts = [threading.Thread(target=run, args=(k, v)) for k, v in probes.items()]
[t.start() for t in ts]; [t.join() for t in ts]; a.join()
open(ctl, "w").write("{}")
for k, (ms, r) in sorted(res.items(), key=lambda x: x[1][0]):
    print(f"  done at {ms:5d} ms  {r:4s}  {k}")

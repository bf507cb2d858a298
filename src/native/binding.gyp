# The native core as a Node addon (node-gyp; `make native` at the top level).
# Every .c file of this directory is part of it (test/ holds harnesses).
# REPLFS_NATIVE_FLAGS adds compiler and linker flags (make native-asan uses it
# for -fsanitize=address,undefined).
{
  "targets": [{
    "target_name": "replfs_core",
    "sources": ["<!@(ls -1 *.c)"],
    "cflags!": ["-fno-exceptions"],
    "cflags_c": ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "<!@(echo ${REPLFS_NATIVE_FLAGS:-})"],
    "ldflags": ["<!@(echo ${REPLFS_NATIVE_FLAGS:-})"],
    "libraries": ["-lisal", "-lcbor", "-lxxhash", "-lpthread", "-luring"]
  }]
}

#!/usr/bin/env node
// replfs command line: one file per verb under cli/; this file only lists them.
import { Command } from 'commander'
import { registerMount } from './cli/mount.js'
import { registerServe } from './cli/serve.js'
import { registerStatus } from './cli/status.js'
import { registerJournal } from './cli/journal.js'
import { registerDemo } from './cli/demo.js'
import { registerPair } from './cli/pair.js'
import { registerRoles } from './cli/roles.js'
import { registerResolve } from './cli/resolve.js'
import { registerVerify } from './cli/verify.js'

// FUSE handlers run their backing I/O on libuv's pool; the default 4
// threads would be shared by up to ~10 kernel worker threads' requests.
process.env.UV_THREADPOOL_SIZE ??= '16'
// Modes come from the application through the kernel, already masked.
process.umask(0)

const program = new Command()
program.name('replfs')
  .description('replicating filesystem: capture writes through FUSE, journal them in order, ship them to a secondary')
  .version('0.1.0')
registerMount(program)
registerServe(program)
registerStatus(program)
registerJournal(program)
registerDemo(program)
registerPair(program)
registerRoles(program)
registerResolve(program)
registerVerify(program)

await program.parseAsync(process.argv)

// The `strata` command line: `serve`, operator commands that talk to a running server over
// HTTP, the demo-data loader and the benchmark. cli.cc declares the command tree with CLI11
// (confined to that file: it is slow to compile); each command group's commands live in a
// file of their own without it (viewing_commands.h, media_commands.h, gc_commands.h,
// server_commands.h, over the HTTP helpers of call.h).
#pragma once

namespace strata::cli {

// Runs the command line; returns the process exit code.
int Run(int argc, char** argv);

}  // namespace strata::cli

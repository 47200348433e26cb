// The `strata` command line: `serve`, operator commands that talk to a running server over
// HTTP, the demo-data loader and the benchmark. CLI11 is confined to cli.cc (slow to compile).
#pragma once

namespace strata::cli {

// Runs the command line; returns the process exit code.
int Run(int argc, char** argv);

}  // namespace strata::cli

// The one Strata binary: `strata serve`, operator commands and the benchmark.
#include "strata/cli/cli.h"

int main(int argc, char** argv) { return strata::cli::Run(argc, argv); }

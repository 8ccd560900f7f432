#pragma once
// The command-line front end: parses arguments, dispatches to a subcommand, and turns every
// outcome into an exit code (docs/cli.md). The only module that prints.

namespace avps::cli {

int main(int argc, char** argv);

}  // namespace avps::cli

// Command latticed runs a wasmCloud-style lattice node and its tools. This
// package only wires cobra commands to the packages that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses (docs/operations.md, "What runs, and where").
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed; the message is on stderr
	exitUsage   = 2 // bad command line or configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit status. Errors
// are printed once, as "latticed: <message>"; usage errors add one line that
// points to the command's --help, not the whole usage text, which would bury
// the one line that matters. Under --output json the error is wash's error
// envelope instead (output.go).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	var ue usageError
	code := exitFailure
	if errors.As(err, &ue) {
		code = exitUsage
	}
	if outputOf(cmd) == outputJSON {
		// wash's error envelope, on stderr as wash writes it; stdout
		// stays empty, so a script reads either a result or nothing.
		if werr := writeErrorEnvelope(stderr, err); werr == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

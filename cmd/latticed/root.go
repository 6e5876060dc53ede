package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latticed/latticed/internal/buildinfo"
	"github.com/latticed/latticed/internal/config"
)

// commands builds the top-level commands. A new command group is one more
// entry here; its constructor lives in its own file.
var commands = []func() *cobra.Command{
	newKeysCmd,
	newClaimsCmd,
	newCtlCmd,
	newCacheCmd,
	newApplyCmd,
	newUpCmd,
	newHostCmd,
	newProviderCmd,
	newPushCmd,
	newParCmd,
	newVersionCmd,
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "latticed",
		Short: "A NATS-based wasmCloud-style lattice node in one binary",
		Long: `latticed runs WebAssembly actors and capability providers on a NATS lattice,
and carries the tools to manage their keys and signed claims.

Exit status: 0 success, 1 the operation failed, 2 usage or configuration error.

Environment:
  LATTICED_DATA_DIR   data directory (JetStream store, compile cache, keys);
                      default $XDG_DATA_HOME/latticed, else ~/.local/share/latticed`,
		Args:          noSubcommand,
		RunE:          showHelp,
		Version:       buildinfo.Version,
		SilenceErrors: true, // run prints errors once, as "latticed: ..."
		SilenceUsage:  true, // and for usage errors only a pointer to --help
	}
	root.SetVersionTemplate(`latticed {{.Version}}` + fmt.Sprintf(" (commit %s)\n", buildinfo.GetCommit()))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

// newGroupCmd is a command that only holds subcommands: alone it prints its
// help; with an unknown subcommand it is a usage error.
func newGroupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: noSubcommand, RunE: showHelp}
	cmd.AddCommand(subs...)
	return cmd
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{errors.New(msg)}
}

// exactArgs requires one positional argument per name. Messages never echo
// the arguments: one of them may be a seed.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErrorf("missing argument %s", names[len(args)])
		case len(args) > len(names):
			return usageErrorf("too many arguments: want %d (%s), got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// washAliases makes fl accept wash's spelling of a flag (alias → name) as
// well as ours: operators who know wash need not relearn. The alias is a
// spelling, not a second flag, so giving both is one flag given twice.
func washAliases(fl *pflag.FlagSet, aliases map[string]string) {
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := aliases[name]; ok {
			name = to
		}
		return pflag.NormalizedName(name)
	})
}

// usageError makes the command exit with status 2 and point to its --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// defaultDataDir is the data directory as the config package resolves it.
func defaultDataDir() (string, error) { return config.DataDir(os.LookupEnv) }

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// outputFormat is the value of --output.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "json|text" }

func (f *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputText, outputJSON:
		*f = outputFormat(s)
		return nil
	}
	if strings.ContainsAny(s, "./") {
		// -o is wash's output format; claims sign and par create take
		// the file to write as -d/--destination (also as in wash).
		return fmt.Errorf("want json or text, got %q: -o is the output format; the file to write is -d/--destination", s)
	}
	return fmt.Errorf("want json or text, got %q", s)
}

// addOutputFlag gives cmd and all its subcommands -o/--output json|text
// (wash spells it the same).
func addOutputFlag(cmd *cobra.Command) {
	f := outputText
	cmd.PersistentFlags().VarP(&f, "output", "o", "output format: text for people, json for scripts")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{string(outputText), string(outputJSON)}, cobra.ShellCompDirectiveNoFileComp))
}

// outputOf is the --output value in effect for cmd (text when it has none).
func outputOf(cmd *cobra.Command) outputFormat {
	if fl := cmd.Flag("output"); fl != nil {
		return outputFormat(fl.Value.String())
	}
	return outputText
}

// printResult writes v as indented JSON with --output json, else calls text.
func printResult(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	w := cmd.OutOrStdout()
	if outputOf(cmd) == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(w)
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
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
	cmd.PersistentFlags().VarP(&f, "output", "o", `output format: text for people, or json for scripts: one object as wash prints it, the result's keys plus "success": true on stdout, or {"success": false, "error": "…"} on stderr with exit status 1 (2: usage)`)
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

// Under --output json every command prints one JSON object, the envelope
// wash prints (wash's main.rs): the result's fields plus "success": true on
// standard output, or {"success": false, "error": "..."} on standard error
// with a non-zero exit status. docs/operations.md ("JSON output") lists each
// command's keys.
const (
	envelopeSuccess = "success"
	envelopeError   = "error"
)

// printResult prints a result whose fields are the envelope's (wash's shape
// for actions: {"result": "...", "actor_id": ..., "success": true}): with
// --output json the fields of v, which must encode as a JSON object, plus
// "success"; else text.
func printResult(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	w := cmd.OutOrStdout()
	if outputOf(cmd) != outputJSON {
		return text(w)
	}
	fields, err := envelopeFields(v)
	if err != nil {
		return err
	}
	fields[envelopeSuccess] = json.RawMessage("true")
	return writeJSON(w, fields)
}

// printKeyed prints a result under one key naming it (wash's shape for
// queries: {"hosts": [...], "success": true}); text otherwise.
func printKeyed(cmd *cobra.Command, key string, v any, text func(w io.Writer) error) error {
	w := cmd.OutOrStdout()
	if outputOf(cmd) != outputJSON {
		return text(w)
	}
	// Encoded once, straight to the output: a list of 100 000 links is
	// not worth a round trip through envelopeFields.
	return writeJSON(w, map[string]any{key: v, envelopeSuccess: true})
}

// envelopeFields is v's JSON object as fields an envelope can add to.
func envelopeFields(v any) (map[string]json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as writeJSON: the fields are written as they are encoded here
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode the result as JSON: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &fields); err != nil || fields == nil {
		// A command passed a list or a scalar to printResult: a bug, not
		// the user's doing; printKeyed is the call it meant.
		return nil, fmt.Errorf("internal error: a %T result is no JSON object; please report it", v)
	}
	if _, ok := fields[envelopeSuccess]; ok {
		return nil, fmt.Errorf("internal error: a %T result has its own %q field; please report it", v, envelopeSuccess)
	}
	return fields, nil
}

// writeJSON writes v indented, with "<", ">" and "&" as they are (an HTTP
// body in a call's reply stays readable).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// partialError is a failure that comes with part of a result (the steps
// apply took before one failed): under --output json the error envelope
// carries it under key, so a script sees what was done.
type partialError struct {
	err error
	key string
	v   any
}

func (e partialError) Error() string { return e.err.Error() }
func (e partialError) Unwrap() error { return e.err }

// withPartial attaches v to err under key; nil when err is nil.
func withPartial(err error, key string, v any) error {
	if err == nil {
		return nil
	}
	return partialError{err: err, key: key, v: v}
}

// writeErrorEnvelope writes err as wash does under --output json:
// {"success": false, "error": "..."}, plus a partial result when err has one.
func writeErrorEnvelope(w io.Writer, err error) error {
	fields := map[string]any{envelopeSuccess: false, envelopeError: err.Error()}
	var pe partialError
	if errors.As(err, &pe) {
		fields[pe.key] = pe.v
	}
	return writeJSON(w, fields)
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/lattice"
	"github.com/spf13/cobra"

	"github.com/latticed/latticed/trust"
)

func newClaimsCmd() *cobra.Command {
	cmd := newGroupCmd("claims", "Sign actor modules and inspect their claims",
		`Sign WebAssembly actor modules with wascap claims (embedded as a JWT in the
module's "jwt" custom section) and inspect them. A host runs an actor only when
its claims are signed by an account key, name the actor's module key, are in
their validity period, and match the module's hash.`,
		newClaimsSignCmd(), newClaimsInspectCmd())
	addOutputFlag(cmd)
	return cmd
}

type signFlags struct {
	dest, name, ver, callAlias string
	issuer, subject            string
	keys                       keyDirFlags
	caps, tags                 []string
	rev                        int32
	expiresDays, notBeforeDays int
}

// signResult is the JSON output of claims sign: wash's keys for it
// (destination, the module written; capabilities) and the flattened claims
// as the lattice cache keeps them.
type signResult struct {
	lattice.CachedClaims
	Destination  string   `json:"destination"`
	Capabilities []string `json:"capabilities"`
}

func newClaimsSignCmd() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign <module.wasm>",
		Short: "Sign an actor module with capability claims",
		Long: `Sign an actor module: embed claims naming its module key (subject), signed by
an account key (issuer), listing the capability contracts it may use.

--issuer and --subject take a seed, a file holding one, or "-" for stdin
(else $` + envWashIssuerKey + ` and $` + envWashSubjectKey + `, as in wash).

` + keyDirHelp("module", "the module's file name without .wasm") + `

Re-signing a module with the same keys keeps its identity.

Without -d the signed module is written beside the input as <stem>_s.wasm.

Environment:
  ` + envWashKeys + `           wash's key directory (see above)
  ` + envWashIssuerKey + `     default for --issuer; ` + envWashSubjectKey + ` for --subject
  ` + envUser + `                names the account key file in a wash key directory
  LATTICED_DATA_DIR   data directory; default $XDG_DATA_HOME/latticed,
                      else $HOME/.local/share/latticed`,
		Example: `  latticed claims sign echo.wasm -c wasmcloud:httpserver --ver 0.1.0 --rev 1
  latticed claims sign echo.wasm -d echo_signed.wasm --issuer account.nk --subject echo_module.nk
  latticed claims sign echo.wasm -c wasmcloud:keyvalue -t web --expires-in-days 90 --output json`,
		Args: exactArgs("<module.wasm>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClaimsSign(cmd, args[0], &f)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	washAliases(fl, map[string]string{"expires": "expires-in-days", "nbf": "not-before-days"})
	fl.StringVarP(&f.dest, "destination", "d", "", "`file` to write the signed module to (default <stem>_s.wasm beside the input)")
	fl.StringVar(&f.name, "name", "", "actor `name` (default the file name without .wasm)")
	fl.StringSliceVarP(&f.caps, "cap", "c", nil, "capability `contract` id the actor may use, e.g. wasmcloud:httpserver (repeatable)")
	fl.StringSliceVarP(&f.tags, "tag", "t", nil, "`tag` to attach (repeatable)")
	fl.Int32Var(&f.rev, "rev", 0, "revision number")
	fl.StringVar(&f.ver, "ver", "", "human-readable `version`, e.g. 0.1.0")
	fl.StringVar(&f.callAlias, "call-alias", "", "`alias` other actors may call this one by (normalised: lowercase, '_' for space, '-' and '.')")
	fl.StringVar(&f.issuer, "issuer", "", "`seed|file` of the issuer: an account seed (SA…), a file holding one, or - for stdin (default: the account key in the keys directory)")
	fl.StringVar(&f.subject, "subject", "", "`seed|file` of the subject: a module seed (SM…), a file holding one, or - for stdin (default: the module's key in the keys directory)")
	fl.IntVarP(&f.expiresDays, "expires-in-days", "x", 0, "claims expire in this many `days` (default never; wash: --expires)")
	fl.IntVarP(&f.notBeforeDays, "not-before-days", "b", 0, "claims become valid in this many `days` (default immediately; wash: --nbf)")
	addKeyDirFlags(fl, &f.keys, "") // -d is --destination, as in wash's claims sign
	return cmd
}

func runClaimsSign(cmd *cobra.Command, in string, f *signFlags) error {
	fl := cmd.Flags()
	if f.rev < 0 {
		return usageErrorf("--rev must not be negative")
	}
	if fl.Changed("expires-in-days") && f.expiresDays <= 0 {
		return usageErrorf("--expires-in-days must be positive")
	}
	if f.notBeforeDays < 0 {
		return usageErrorf("--not-before-days must not be negative")
	}
	for _, c := range f.caps {
		// A contract id is namespace:name; a bare name would be signed as
		// it is and then never match the provider's contract.
		if ns, name, ok := strings.Cut(c, ":"); !ok || ns == "" || name == "" {
			example := "wasmcloud:httpserver"
			if !ok {
				example = "wasmcloud:" + c
			}
			return usageErrorf("--cap %q: a capability contract id is namespace:name, e.g. %s", c, example)
		}
	}
	stem := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	if f.name == "" {
		f.name = stem
	}
	if f.dest == "" {
		f.dest = filepath.Join(filepath.Dir(in), stem+"_s.wasm")
	}

	module, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	if _, err := trust.StripClaims(module); err != nil { // before any key is generated
		return fmt.Errorf("%s: %w", in, err)
	}
	account, subject, err := signingKeys(cmd, f.issuer, f.subject, f.keys, lattice.KindModule, f.name, in)
	if err != nil {
		return err
	}

	now := time.Now()
	opts := trust.SignActorOptions{
		Name: f.name, Caps: nonEmpty(f.caps), Tags: nonEmpty(f.tags),
		Rev: f.rev, Ver: f.ver, CallAlias: f.callAlias,
	}
	if fl.Changed("expires-in-days") {
		opts.Expires = now.Add(time.Duration(f.expiresDays) * 24 * time.Hour)
	}
	if f.notBeforeDays > 0 {
		opts.NotBefore = now.Add(time.Duration(f.notBeforeDays) * 24 * time.Hour)
	}
	signed, claims, err := trust.SignActor(module, opts, account, subject)
	if err != nil {
		return err
	}
	if err := datadir.WriteFile(f.dest, signed, 0o644); err != nil {
		return err
	}
	res := signResult{CachedClaims: trust.FlattenActor(claims), Destination: f.dest, Capabilities: nonEmpty(claims.Wascap.Caps)}
	if res.Capabilities == nil {
		res.Capabilities = []string{}
	}
	return printResult(cmd, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Module:  %s\nAccount: %s\nWritten: %s\n", claims.Subject, claims.Issuer, f.dest)
		return err
	})
}

// signingKeys are the issuer (account) and subject (of subjectKind) keys
// of claims sign and par create: the ones given (--issuer, --subject, or
// wash's variables), checked before any key file is created, and the
// others from the keys directory, named after name (latticed's layout) or
// file (wash's).
func signingKeys(cmd *cobra.Command, issuerArg, subjectArg string, dirs keyDirFlags, subjectKind lattice.KeyKind, name, file string) (issuer, subject *trust.KeyPair, err error) {
	if issuer, err = explicitKey(cmd, "issuer", issuerArg, envWashIssuerKey, lattice.KindAccount, os.LookupEnv); err != nil {
		return nil, nil, err
	}
	if subject, err = explicitKey(cmd, "subject", subjectArg, envWashSubjectKey, subjectKind, os.LookupEnv); err != nil {
		return nil, nil, err
	}
	if issuer != nil && subject != nil {
		return issuer, subject, nil
	}
	ks, err := resolveKeyStore(cmd.Flags(), dirs, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	if issuer == nil {
		if issuer, err = ks.key(cmd.ErrOrStderr(), "issuer", lattice.KindAccount, name, file); err != nil {
			return nil, nil, err
		}
	}
	if subject == nil {
		if subject, err = ks.key(cmd.ErrOrStderr(), "subject", subjectKind, name, file); err != nil {
			return nil, nil, err
		}
	}
	return issuer, subject, nil
}

// keyFileName is <name>_<kind>.nk with name reduced to safe file-name characters.
func keyFileName(name string, kind lattice.KeyKind) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
	if strings.Trim(safe, "._") == "" {
		safe = "actor"
	}
	return safe + "_" + kind.String() + ".nk"
}

func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func newClaimsInspectCmd() *cobra.Command {
	var jwtOnly bool
	cmd := &cobra.Command{
		Use:   "inspect <module.wasm>",
		Short: "Verify and show an actor module's claims",
		Long: `Verify an actor module's embedded claims and show them. The command fails
(exit status 1) when the module has no claims, their signature is invalid, the
module was altered after signing (module hash mismatch), or they are expired
or not yet valid.

--output json prints the keys wash prints (account, module and actor: the
module key, expires, can_be_used, version, revision, capabilities, tags,
call_alias, name) and the decoded token under "claims" (iss, sub, iat, exp,
nbf, jti, wascap); with --jwt-only the token under "jwt".`,
		Example: "  latticed claims inspect echo_s.wasm\n  latticed claims inspect echo_s.wasm --jwt-only",
		Args:    exactArgs("<module.wasm>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClaimsInspect(cmd, args[0], jwtOnly)
		},
	}
	cmd.Flags().BoolVar(&jwtOnly, "jwt-only", false, "print only the raw claims token (after verifying it)")
	return cmd
}

func runClaimsInspect(cmd *cobra.Command, path string, jwtOnly bool) error {
	module, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	claims, err := trust.VerifyActor(module, time.Now())
	switch {
	case errors.Is(err, trust.ErrNoClaims):
		return fmt.Errorf("no claims found in %s: sign it with latticed claims sign", path)
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	}
	if jwtOnly {
		token, err := trust.ExtractClaimsJWT(module)
		if err != nil {
			return err
		}
		return printKeyed(cmd, "jwt", token, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, token)
			return err
		})
	}
	return printResult(cmd, newInspectResult(claims), func(w io.Writer) error { return writeClaimsTable(w, claims) })
}

// inspectResult is what claims inspect prints under --output json: the
// keys wash's claims inspect prints for an actor, and the decoded token.
type inspectResult struct {
	Account string `json:"account"`
	Module  string `json:"module"`
	// Actor repeats Module: wash prints the module key under both names.
	Actor        string             `json:"actor"`
	Expires      string             `json:"expires"`
	CanBeUsed    string             `json:"can_be_used"`
	Version      string             `json:"version"`
	Revision     int32              `json:"revision"`
	Capabilities []string           `json:"capabilities"`
	Tags         []string           `json:"tags"`
	CallAlias    string             `json:"call_alias"`
	Name         string             `json:"name"`
	Claims       *trust.ActorClaims `json:"claims"`
}

func newInspectResult(c *trust.ActorClaims) inspectResult {
	var a trust.Actor
	if c.Wascap != nil {
		a = *c.Wascap
	}
	list := func(items []string) []string {
		if items = nonEmpty(items); items == nil {
			return []string{}
		}
		return items
	}
	return inspectResult{
		Account: c.Issuer, Module: c.Subject, Actor: c.Subject,
		Expires: claimsTime(c.Expires, "never"), CanBeUsed: claimsTime(c.NotBefore, "immediately"),
		Version: a.Ver, Revision: a.Rev, Capabilities: list(a.Caps), Tags: list(a.Tags),
		CallAlias: a.CallAlias, Name: a.Name, Claims: c,
	}
}

// claimsTime is a claims time as inspect shows it: RFC 3339 in UTC, or none
// when the claims have none.
func claimsTime(unix int64, none string) string {
	if unix == 0 {
		return none
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

// writeClaimsTable renders claims the way `wash claims inspect` does.
func writeClaimsTable(w io.Writer, c *trust.ActorClaims) error {
	a := c.Wascap
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	list := func(items []string) string {
		if items = nonEmpty(items); len(items) == 0 {
			return " None\n"
		}
		return " " + strings.Join(items, "\n ") + "\n"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%q - Module\n", a.Name)
	fmt.Fprintf(tw, " Account\t%s\n", c.Issuer)
	fmt.Fprintf(tw, " Module\t%s\n", c.Subject)
	fmt.Fprintf(tw, " Expires\t%s\n", claimsTime(c.Expires, "never"))
	fmt.Fprintf(tw, " Can Be Used\t%s\n", claimsTime(c.NotBefore, "immediately"))
	fmt.Fprintf(tw, " Version\t%s (%d)\n", or(a.Ver, "None"), a.Rev)
	fmt.Fprintf(tw, " Call Alias\t%s\n", or(a.CallAlias, "(Not set)"))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "Capabilities\n%sTags\n%s", list(a.Caps), list(a.Tags))
	return err
}

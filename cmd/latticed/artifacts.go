package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latticed/latticed/internal/builtin"
	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/internal/datadir"
	"github.com/latticed/latticed/internal/oci"
	"github.com/latticed/latticed/internal/par"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// pushResult is the JSON output of push: wash's key for push ("url") and
// what was pushed.
type pushResult struct {
	Reference string `json:"url"`
	Digest    string `json:"digest"`
	Kind      string `json:"kind"`
	PublicKey string `json:"public_key"`
	Bytes     int    `json:"bytes"`
}

func newPushCmd() *cobra.Command {
	var insecure, allowLatest, passwordStdin bool
	var user string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "push <registry/repository:tag> <actor.wasm|provider.par.gz>",
		Short: "Publish a signed actor or a provider archive to an OCI registry",
		Long: `Publish a signed actor module or a provider archive to an OCI registry the way
wasmCloud's wash does, so hosts (latticed or wasmCloud) start it by reference:
an OCI image manifest with one layer, the file as it is, of media type
application/vnd.module.wasm.content.layer.v1+wasm (actors) or
application/vnd.wasmcloud.provider.archive.layer.v1+par (provider archives),
and a "{}" config of type application/vnd.wasmcloud.actor.archive.config or
application/vnd.wasmcloud.provider.archive.config.

The file is verified first: an actor must carry valid claims whose hash
matches the module (latticed claims sign), an archive valid claims whose
target hashes match its binaries (latticed par create). The reference needs a
tag other than latest unless --allow-latest (or WASMCLOUD_OCI_ALLOW_LATEST).
The registry is reached over HTTPS unless --insecure or it is listed in
WASMCLOUD_OCI_ALLOWED_INSECURE.

Prints the manifest digest; a host can be given reference@digest too.`,
		Example: `  latticed push registry.example.com/team/echo:0.1.0 echo_s.wasm
  latticed push 127.0.0.1:5000/httpserver:0.1.0 bin/providers/httpserver.par.gz --insecure
  echo "$TOKEN" | latticed push ghcr.io/me/echo:0.1.0 echo_s.wasm --user me --password-stdin`,
		Args: exactArgs("<registry/repository:tag>", "<file>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, path := args[0], args[1]
			cfg, _, err := config.Load(pflag.NewFlagSet("push", pflag.ContinueOnError), os.LookupEnv)
			if err != nil {
				return usageError{fmt.Errorf("configuration: %w", err)}
			}
			r, err := oci.ParseReference(ref, allowLatest || cfg.OCIAllowLatest)
			if err != nil {
				return usageError{err}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			kind, key, err := artifactKind(data)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			insecureList := cfg.OCIAllowedInsecure
			if insecure {
				insecureList = append(insecureList, r.Registry)
			}
			client := oci.New(oci.Settings{AllowedInsecure: insecureList})
			if user != "" {
				cred := oci.Credential{Username: user}
				if passwordStdin {
					line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if err != nil && err != io.EOF {
						return fmt.Errorf("read the password from stdin: %w", err)
					}
					cred.Password = strings.TrimRight(line, "\r\n")
				}
				client.PutCredentials(map[string]oci.Credential{r.Registry: cred})
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			desc, err := client.Push(ctx, ref, kind, data, allowLatest || cfg.OCIAllowLatest)
			if err != nil {
				return err
			}
			res := pushResult{Reference: r.String(), Digest: desc.Digest.String(), Kind: kind.String(), PublicKey: key, Bytes: len(data)}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Pushed %s %s (%s)\nDigest: %s\n", kind, res.Reference, key, res.Digest)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&insecure, "insecure", false, "use plain HTTP for this registry (e.g. a registry on localhost)")
	fl.BoolVar(&allowLatest, "allow-latest", false, "allow the tag latest")
	fl.StringVar(&user, "user", "", "registry `username` (default: anonymous)")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "read the registry password or token from stdin (first line)")
	fl.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	addOutputFlag(cmd)
	return cmd
}

// artifactKind tells a signed actor from a provider archive, verifying it
// (as wash does before a push); key is its public key.
func artifactKind(data []byte) (oci.Kind, string, error) {
	if bytes.HasPrefix(data, []byte("\x00asm")) {
		c, err := trust.VerifyActor(data, time.Now())
		if err != nil {
			return 0, "", fmt.Errorf("not a pushable actor: %w (sign it with latticed claims sign)", err)
		}
		return oci.Actor, c.Subject, nil
	}
	a, err := par.Read(data)
	if err != nil {
		return 0, "", fmt.Errorf("neither a wasm module nor a valid provider archive: %w", err)
	}
	if err := a.Claims.CheckTime(time.Now(), 0); err != nil {
		return 0, "", fmt.Errorf("provider archive claims: %w", err)
	}
	return oci.ProviderArchive, a.Claims.Subject, nil
}

func newParCmd() *cobra.Command {
	cmd := newGroupCmd("par", "Create and inspect provider archives (.par.gz)",
		`A provider archive ships a capability provider the way wasmCloud does: a
gzipped tar holding claims.jwt (the provider's claims, signed by an account
key, naming its service key and listing the SHA-256 of every binary) and one
executable per target, {arch}-{os}.bin (x86_64-linux.bin, aarch64-linux.bin,
aarch64-macos.bin …). A host runs the binary for its own machine after
checking the claims' signature and that binary's hash.

Publish an archive with latticed push; start it with
latticed ctl start provider <registry/repo:tag> or, with
WASMCLOUD_ALLOW_FILE_LOAD, file:///path/provider.par.gz.`,
		newParCreateCmd(), newParInspectCmd())
	addOutputFlag(cmd)
	return cmd
}

type parCreateFlags struct {
	name, contract, vendor, ver, builtin string
	arch                                 string
	issuer, subject, dest                string
	keys                                 keyDirFlags
	binaries                             []string
	rev                                  int32
	expiresDays                          int
}

func newParCreateCmd() *cobra.Command {
	var f parCreateFlags
	cmd := &cobra.Command{
		Use:   "create --binary <target>=<file> … (--contract <id> --name <name> | --builtin <name>)",
		Short: "Pack provider executables into a signed provider archive",
		Long: `Pack one executable per target into a provider archive with signed claims.

--binary takes target=file, the target either wasmCloud's {arch}-{os}
(x86_64-linux) or Go's os/arch (linux/amd64); repeat it per target. As in
wash, --arch <target> --binary <file> names one target the other way. Each
executable must run without arguments and read HostData on stdin (as every
wasmCloud provider does). --builtin <name> fills in the name, contract and
vendor of one of latticed's built-in providers (httpserver, keyvalue),
whose standalone executables are built from ./cmd/provider-<name>.

--issuer (an account seed, SA…) and --subject (a service seed, SV…) take a
seed, a file holding one, or "-" for stdin (else $` + envWashIssuerKey + ` and
$` + envWashSubjectKey + `, as in wash).

` + keyDirHelp("service", "the first --binary's file name without its extension") + `

A new archive signed with the same keys keeps the provider's identity (the
subject's V… key is the provider's key in the lattice).`,
		Example: `  latticed par create --contract wasmcloud:httpserver --name "HTTP Server" --vendor acme \
      --binary x86_64-linux=./httpserver-amd64 --binary aarch64-linux=./httpserver-arm64 --destination httpserver.par.gz
  latticed par create --builtin keyvalue --binary linux/amd64=bin/provider-keyvalue`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return runParCreate(cmd, f) },
	}
	fl := cmd.Flags()
	washAliases(fl, map[string]string{"capid": "contract", "revision": "rev"})
	fl.StringArrayVar(&f.binaries, "binary", nil, "`target=file`: an executable for a target (repeatable)")
	fl.StringVar(&f.arch, "arch", "", "`target` of the one --binary given as a plain file, as wash takes it (e.g. x86_64-linux)")
	fl.StringVar(&f.builtin, "builtin", "", "`name` of a built-in provider whose name, contract and vendor to use")
	fl.StringVar(&f.contract, "contract", "", "capability contract `id` the provider serves, e.g. wasmcloud:httpserver (wash: --capid)")
	fl.StringVar(&f.name, "name", "", "provider `name`")
	fl.StringVar(&f.vendor, "vendor", "", "`vendor` name")
	fl.StringVar(&f.ver, "ver", "", "human-readable `version`, e.g. 0.1.0")
	fl.Int32Var(&f.rev, "rev", 0, "revision `number` (wash: --revision)")
	fl.IntVar(&f.expiresDays, "expires-in-days", 0, "claims expire after this many `days` (default: never)")
	fl.StringVar(&f.issuer, "issuer", "", "`seed|file` of the issuer: an account seed (SA…), a file holding one, or - for stdin (default: the account key in the keys directory)")
	fl.StringVar(&f.subject, "subject", "", "`seed|file` of the provider's service key (SV…), a file, or - (default: the provider's key in the keys directory)")
	addKeyDirFlags(fl, &f.keys, "d") // wash's par create -d
	fl.StringVar(&f.dest, "destination", "", "output `file` (default <name>.par.gz)")
	return cmd
}

func runParCreate(cmd *cobra.Command, f parCreateFlags) error {
	if f.builtin != "" {
		b, ok := builtin.Lookup(f.builtin)
		if !ok {
			return usageErrorf("--builtin %q: no such built-in provider (have %s)", f.builtin, builtin.Refs())
		}
		if f.name == "" {
			f.name = b.Name
		}
		if f.contract == "" {
			f.contract = b.Contract
		}
		if f.vendor == "" {
			f.vendor = "latticed"
		}
	}
	if f.contract == "" || f.name == "" {
		return usageErrorf("--contract and --name are required (or --builtin)")
	}
	if len(f.binaries) == 0 {
		return usageErrorf("at least one --binary target=file is required")
	}
	if f.arch != "" {
		if len(f.binaries) != 1 || strings.Contains(f.binaries[0], "=") {
			return usageErrorf("--arch %s names the target of exactly one --binary <file>; for several targets give --binary target=file for each", f.arch)
		}
		f.binaries = []string{f.arch + "=" + f.binaries[0]}
	}
	bins := map[string][]byte{}
	firstFile := "" // names the service key in a wash key directory, as wash's one --binary does
	for _, spec := range f.binaries {
		target, file, ok := strings.Cut(spec, "=")
		if !ok || target == "" || file == "" {
			return usageErrorf("--binary %q: want target=file, e.g. x86_64-linux=./provider", spec)
		}
		if goos, goarch, isGo := strings.Cut(target, "/"); isGo {
			target = trust.TargetOf(goarch, goos)
		}
		if _, dup := bins[target]; dup {
			return usageErrorf("--binary: target %s given twice", target)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		bins[target] = b
		if firstFile == "" {
			firstFile = file
		}
	}
	if f.dest == "" {
		f.dest = keyFileStem(f.name) + ".par.gz"
	}
	issuer, subject, err := signingKeys(cmd, f.issuer, f.subject, f.keys, lattice.KindService, f.name, firstFile)
	if err != nil {
		return err
	}
	opts := par.CreateOptions{Name: f.name, ContractID: f.contract, Vendor: f.vendor, Ver: f.ver, Rev: f.rev}
	if f.expiresDays > 0 {
		opts.Expires = time.Now().Add(time.Duration(f.expiresDays) * 24 * time.Hour)
	}
	var buf bytes.Buffer
	claims, err := par.Create(&buf, opts, bins, issuer, subject)
	if err != nil {
		return err
	}
	if err := datadir.WriteFile(f.dest, buf.Bytes(), 0o644); err != nil {
		return err
	}
	res := parInfo(claims, f.dest)
	return printResult(cmd, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Provider: %s\nAccount:  %s\nTargets:  %s\nWritten:  %s\n", claims.Subject, claims.Issuer, strings.Join(res.Targets, ", "), f.dest)
		return err
	})
}

// keyFileStem is a provider name reduced to file-name characters.
func keyFileStem(name string) string {
	return strings.TrimSuffix(keyFileName(name, lattice.KindService), "_"+lattice.KindService.String()+".nk")
}

// parSummary is the JSON output of par create and par inspect: the keys
// wash's par inspect prints (name, issuer, service, capability_contract_id,
// vendor, version, revision, targets), wash's par create "file" (the
// archive's path), and the expiry and target hashes.
type parSummary struct {
	PublicKey    string            `json:"service"`
	Issuer       string            `json:"issuer"`
	Name         string            `json:"name"`
	ContractID   string            `json:"capability_contract_id"`
	Vendor       string            `json:"vendor"`
	Ver          string            `json:"version,omitempty"`
	Rev          int32             `json:"revision,omitempty"`
	Expires      int64             `json:"exp,omitempty"`
	Targets      []string          `json:"targets"`
	TargetHashes map[string]string `json:"target_hashes"`
	Path         string            `json:"file"`
}

func parInfo(c *trust.ProviderClaims, path string) parSummary {
	w := c.Wascap
	targets := make([]string, 0, len(w.TargetHashes))
	for t := range w.TargetHashes {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	return parSummary{PublicKey: c.Subject, Issuer: c.Issuer, Name: w.Name, ContractID: w.ContractID, Vendor: w.Vendor,
		Ver: w.Ver, Rev: w.Rev, Expires: c.Expires, Targets: targets, TargetHashes: w.TargetHashes, Path: path}
}

func newParInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect <provider.par.gz>",
		Short: "Verify and show a provider archive's claims and targets",
		Long: `Verify a provider archive — the claims' signature, and every binary's
SHA-256 against the claims' target_hashes — and show its claims and targets.
Fails (exit status 1) when any check fails, naming what was altered.`,
		Example: "  latticed par inspect httpserver.par.gz\n  latticed par inspect httpserver.par.gz --output json",
		Args:    exactArgs("<provider.par.gz>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			a, err := par.Read(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := a.Claims.CheckTime(time.Now(), 0); err != nil {
				return fmt.Errorf("%s: claims: %w", args[0], err)
			}
			res := parInfo(a.Claims, args[0])
			return printResult(cmd, res, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "%q - Provider Archive\n", res.Name)
				fmt.Fprintf(tw, " Account\t%s\n", res.Issuer)
				fmt.Fprintf(tw, " Service\t%s\n", res.PublicKey)
				fmt.Fprintf(tw, " Capability Contract\t%s\n", res.ContractID)
				fmt.Fprintf(tw, " Vendor\t%s\n", res.Vendor)
				fmt.Fprintf(tw, " Version\t%s (%d)\n", res.Ver, res.Rev)
				fmt.Fprintf(tw, " This machine\t%s\n", trust.ProviderTarget())
				fmt.Fprintln(tw, "Targets")
				for _, t := range res.Targets {
					fmt.Fprintf(tw, " %s\t%s (%d bytes)\n", t, res.TargetHashes[t], len(a.Targets[t]))
				}
				return tw.Flush()
			})
		},
	}
}

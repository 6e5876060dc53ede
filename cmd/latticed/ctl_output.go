package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latticed/latticed/ctlclient"
	"github.com/latticed/latticed/lattice"
)

// Text renderings of ctl results; --output json prints them in wash's envelope (output.go).

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeHosts(w io.Writer, hosts []lattice.HostInfo) error {
	t := newTable(w)
	fmt.Fprintln(t, "HOST ID\tFRIENDLY NAME\tUPTIME\tLABELS")
	for _, h := range hosts {
		up := h.UptimeHuman
		if up == "" {
			up = (time.Duration(h.UptimeSeconds) * time.Second).String()
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", h.ID, orDash(h.FriendlyName), up, ctlclient.FormatLabels(h.Labels))
	}
	return t.Flush()
}

func writeInventory(w io.Writer, inv *lattice.HostInventory) error {
	t := newTable(w)
	fmt.Fprintf(t, "Host:\t%s\n", inv.HostID)
	fmt.Fprintf(t, "Friendly name:\t%s\n", orDash(inv.FriendlyName))
	fmt.Fprintf(t, "Labels:\t%s\n\n", ctlclient.FormatLabels(inv.Labels))
	if err := t.Flush(); err != nil {
		return err
	}
	if len(inv.Actors) == 0 {
		fmt.Fprintln(t, "No actors.")
	} else {
		fmt.Fprintln(t, "ACTOR ID\tNAME\tIMAGE REF\tINSTANCES")
		for _, a := range inv.Actors {
			fmt.Fprintf(t, "%s\t%s\t%s\t%d\n", a.ID, orDash(a.Name), orDash(a.ImageRef), len(a.Instances))
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(t)
	if len(inv.Providers) == 0 {
		fmt.Fprintln(t, "No providers.")
	} else {
		fmt.Fprintln(t, "PROVIDER ID\tNAME\tLINK NAME\tCONTRACT ID\tSTATE\tSIGNING\tIMAGE REF")
		var notes []string
		for _, p := range inv.Providers {
			signing := p.Signing
			if signing == lattice.SigningClusterSeed {
				signing = "cluster-seed"
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, orDash(p.Name), p.LinkName, orDash(p.ContractID), orDash(p.State), orDash(signing), orDash(p.ImageRef))
			if p.ExitReason != "" {
				notes = append(notes, fmt.Sprintf("%s/%s: last ended %s (restarts: %d)", p.ID, p.LinkName, p.ExitReason, p.Restarts))
			}
			if p.Revocation != "" {
				notes = append(notes, fmt.Sprintf("%s/%s: revocation %s", p.ID, p.LinkName, p.Revocation))
			}
			if p.Signing == lattice.SigningClusterSeed {
				notes = append(notes, fmt.Sprintf("%s/%s: holds the lattice's cluster seed (compatibility mode)", p.ID, p.LinkName))
			}
		}
		if len(notes) > 0 {
			fmt.Fprintf(t, "\n%s\n", strings.Join(notes, "\n"))
		}
	}
	return t.Flush()
}

func writeClaims(w io.Writer, claims []lattice.CachedClaims) error {
	if len(claims) == 0 {
		_, err := fmt.Fprintln(w, "No claims.")
		return err
	}
	t := newTable(w)
	fmt.Fprintln(t, "PUBLIC KEY\tNAME\tCALL ALIAS\tVERSION\tCAPABILITIES\tISSUER")
	for _, c := range claims {
		ver := c.Version
		if c.Rev != "" && c.Rev != "0" {
			ver = orDash(ver) + " (" + c.Rev + ")"
		}
		caps := c.Caps
		if c.ContractID != "" {
			caps = c.ContractID
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Subject, orDash(c.Name), orDash(c.CallAlias), orDash(ver), orDash(caps), c.Issuer)
	}
	return t.Flush()
}

func writeLinks(w io.Writer, links []lattice.LinkDefinition) error {
	if len(links) == 0 {
		_, err := fmt.Fprintln(w, "No links.")
		return err
	}
	t := newTable(w)
	fmt.Fprintln(t, "ACTOR ID\tPROVIDER ID\tCONTRACT ID\tLINK NAME\tVALUES")
	for _, l := range links {
		values := "-"
		if len(l.Values) > 0 {
			values = ctlclient.FormatLabels(l.Values)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", l.ActorID, l.ProviderID, l.ContractID, l.LinkName, values)
	}
	return t.Flush()
}

// writeIndentedJSON writes compact JSON indented, as --output json does.
func writeIndentedJSON(w io.Writer, js []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, js, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// Command echoprovider is a careless provider for the supervisor's tests: it
// echoes the HostData it reads on stdin to its output, whole and in pieces,
// decoded and re-encoded, as a provider dumping its configuration might.
// Then it prints "echo done" and waits for SIGTERM.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "no host data:", err)
		os.Exit(2)
	}
	line = strings.TrimSpace(line)
	js, _ := base64.StdEncoding.DecodeString(line)
	var hd map[string]any
	_ = json.Unmarshal(js, &hd)
	seeds := []string{}
	for _, k := range []string{"lattice_rpc_user_seed", "invocation_seed"} {
		if s, ok := hd[k].(string); ok {
			seeds = append(seeds, s)
		}
	}

	fmt.Println(line)                                     // stdin as read
	fmt.Fprintln(os.Stderr, "host data: "+line)           // inside a sentence
	fmt.Fprintln(os.Stderr, string(js))                   // decoded JSON, raw
	fmt.Println(base64.URLEncoding.EncodeToString(js))    // re-encoded, URL alphabet
	fmt.Println(base64.RawStdEncoding.EncodeToString(js)) // unpadded
	fmt.Println("x" + base64.StdEncoding.EncodeToString(append([]byte("ab"), js...)))
	q, _ := json.Marshal(string(js))
	fmt.Fprintf(os.Stderr, `{"level":"INFO","msg":"config","hostdata":%s}`+"\n", q) // JSON-escaped in a log line
	for _, s := range seeds {
		fmt.Println("seed " + s)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			fmt.Fprintln(os.Stderr, "b64 "+enc.EncodeToString([]byte(s)))
			fmt.Fprintln(os.Stderr, "b64 offset "+enc.EncodeToString([]byte("z"+s+"z")))
		}
		fmt.Println("hex " + hex.EncodeToString([]byte(s)) + " " + strings.ToUpper(hex.EncodeToString([]byte(s))))
		var esc strings.Builder
		for _, r := range s {
			fmt.Fprintf(&esc, `\u%04x`, r)
		}
		fmt.Fprintf(os.Stderr, `{"level":"WARN","msg":"escaped %s","%s":1}`+"\n", esc.String(), esc.String())
	}
	fmt.Fprintln(os.Stderr, "echo done")
	<-sig
}

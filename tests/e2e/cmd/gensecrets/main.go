// Command gensecrets writes the key material of the example deployment
// (leafnode TLS, the sites' NATS keys, site SSH keys, arbiter host keys,
// known_hosts): see package secrets for the files.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/tests/e2e/internal/secrets"
)

func main() {
	dir := flag.String("out", "/out", "directory to write to")
	a := flag.String("site-a", "a,172.31.0.10", "site a's name and the addresses its certificate covers, comma-separated")
	b := flag.String("site-b", "b,172.31.0.20", "site b's name and addresses")
	arbiters := flag.String("arbiters", "172.31.0.31,172.31.0.32,172.31.0.33", "arbiter addresses (host or host:port), comma-separated")
	force := flag.Bool("force", false, "replace existing files")
	flag.Parse()
	// A folder made before the NATS keys existed lacks leaf.nk: make it
	// all again rather than keys that match nothing.
	if complete(*dir) && !*force {
		fmt.Fprintf(os.Stderr, "gensecrets: %s already holds secrets; keeping them (-force replaces them)\n", *dir)
		return
	}
	o := secrets.Options{Dir: *dir, Arbiters: split(*arbiters)}
	for _, s := range []string{*a, *b} {
		f := split(s)
		if len(f) == 0 {
			fmt.Fprintln(os.Stderr, "gensecrets: -site-a and -site-b need a name")
			os.Exit(2)
		}
		o.Sites = append(o.Sites, secrets.Site{Name: f[0], Hosts: f[1:]})
	}
	if err := secrets.Generate(o); err != nil {
		fmt.Fprintln(os.Stderr, "gensecrets:", err)
		os.Exit(1)
	}
	// Containers read these as other users (sshd, postgres); the directory
	// is the example's and its keys are worthless outside it.
	fmt.Fprintf(os.Stderr, "gensecrets: wrote %s\n", *dir)
}

// complete reports whether dir holds a whole set of secrets.
func complete(dir string) bool {
	for _, f := range []string{"ca.pem", bus.LeafKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

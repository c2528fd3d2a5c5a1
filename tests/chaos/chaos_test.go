package chaos_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestChaosBudget is CI's fixed budget of the real-process harness: one
// 30 s run of a seed whose schedule is a one-way cut then a full drop
// between the sites, with every check (never two active by the logs and
// by the 10 ms observations, no acknowledged append lost, one active
// after the heal). About two minutes; needs root, MariaDB, sshd, iptables.
func TestChaosBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos harness runs two whole sites with databases for about two minutes")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db", "/usr/sbin/sshd", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		msg := "the chaos harness needs " + strings.Join(missing, ", ") + " (scripts/test.sh installs them)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir(): its 0700 parent keeps mariadbd (user mysql) out.
	dir, err := os.MkdirTemp("", "drchaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "drchaos")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/drchaos").CombinedOutput(); err != nil {
		t.Fatalf("build drchaos: %v\n%s", err, out)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	// DRWATCH_CHAOS_SEED / DRWATCH_CHAOS_DURATION replay another seed,
	// such as 2001 with 60s (README: Findings), which fails today.
	seed, duration := "1", "30s"
	if s := os.Getenv("DRWATCH_CHAOS_SEED"); s != "" {
		seed = s
	}
	if s := os.Getenv("DRWATCH_CHAOS_DURATION"); s != "" {
		duration = s
	}
	cmd := exec.Command(bin, "-runs", "1", "-duration", duration, "-seed", seed, "-repo", repo, "-work", work)
	out, err := cmd.CombinedOutput()
	t.Logf("drchaos:\n%s", out)
	if err != nil {
		// A failing run's directory holds every log: keep it for CI's artifacts.
		kept := filepath.Join(os.TempDir(), "drchaos-failed")
		_ = os.RemoveAll(kept)
		_ = exec.Command("cp", "-a", work, kept).Run()
		t.Fatalf("drchaos: %v (run directory copied to %s)", err, kept)
	}
}

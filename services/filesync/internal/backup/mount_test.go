package backup_test

import "os/exec"

func execMount(dir, size string) ([]byte, error) {
	return exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
}

func execUmount(dir string) ([]byte, error) { return exec.Command("umount", dir).CombinedOutput() }

package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestImpairmentFlagsAreChecked(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-loss", "150"}, "-loss 150, -delay 50ms, -jitter 50ms: want a loss of 0-100 % and 0 <= jitter <= delay"},
		{[]string{"-loss", "-1"}, "-loss -1,"},
		{[]string{"-delay", "10ms"}, "-jitter 50ms: want"},
		{[]string{"-jitter", "-1ms"}, "-jitter -1ms: want"},
	}
	for _, tt := range tests {
		err := runBench(context.Background(), tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("runBench(%v) = %v, want an error saying %q", tt.args, err, tt.want)
		}
	}
}

package rescue

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs the shell as a program: "sh -c SCRIPT", "sh FILE", or, with no
// arguments, interactively on stdin (the console). It returns the exit
// status. ^C interrupts the running command (the process group gets
// SIGINT; the shell itself only stops its builtins); ^\ (SIGQUIT) too,
// which would otherwise end the shell with a goroutine dump.
func Main(args []string, stdin, stdout, stderr *os.File) int {
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	s := New(os.Environ(), dir, stdin, stdout, stderr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGQUIT)
	go func() {
		for range sig {
			s.Interrupt()
		}
	}()
	switch {
	case len(args) >= 2 && args[0] == "-c":
		return s.RunString(args[1])
	case len(args) >= 1 && args[0] != "-i":
		src, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "sh: %v\n", err)
			return 127
		}
		return s.RunString(string(src))
	}
	fmt.Fprintln(stderr, "lastgasp rescue shell (help lists the builtins)")
	return s.Interactive(stdin, Prompt)
}

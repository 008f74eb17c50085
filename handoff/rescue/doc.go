// Package rescue is the image's rescue shell: a small subset of the POSIX
// shell command language (IEEE Std 1003.1, XCU chapter 2, "Shell Command
// Language") with the builtins an operator needs on a crashed box, so that
// the image does not carry a full shell (u-root's gosh, mvdan.cc/sh, cost
// 215 KB of the 2 MB image's xz).
//
// Supported: simple commands with NAME=value prefixes; pipelines (|);
// and-or lists (&&, ||); lists (;, &, newline); redirections <, >, >>,
// N>&M, N<&M; single and double quotes and backslash escapes; $NAME, ${NAME}, $?
// and $(...) (also inside ""); field splitting of unquoted expansions on
// blanks; * ? [...] file patterns; # comments; continuation lines. Not
// supported (a syntax error says so): backquotes, ( ) subshells, if/for/
// while/case, functions, here-documents, ${NAME:-word} forms, job control.
//
// Parse turns source into a Script (pure; fuzzed with a round trip through
// Script.String); Shell runs one.
package rescue

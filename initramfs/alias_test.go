package initramfs

import (
	"strings"
	"testing"
)

func TestFilterAlias(t *testing.T) {
	in := `# Aliases extracted from modules themselves.
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias fs-minix minix
alias pci:v000014E4d00001644sv*sd*bc*sc*i* tg3
alias of:N*T*Cbrcm,bcm2711-genet-v5 genet
alias symbol:foo bar-baz
alias mt8183_mt6358_ts3a227_max98357 soc card mt8183_mt6358_ts3a227_max98357
`
	for _, tt := range []struct {
		name    string
		in      string
		keep    []string
		want    string
		wantErr bool
	}{
		{name: "kept modules only", in: in, keep: []string{"e1000", "virtio_net"},
			want: "alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\nalias virtio:d00000001v* virtio_net\n"},
		{name: "dash and underscore", in: in, keep: []string{"bar_baz"}, want: "alias symbol:foo bar-baz\n"},
		{name: "none", in: in, keep: nil, want: ""},
		// A real line of Debian's 6.12 arm64 modules.alias.
		{name: "alias with spaces", in: in, keep: []string{"mt8183_mt6358_ts3a227_max98357"},
			want: "alias mt8183_mt6358_ts3a227_max98357 soc card mt8183_mt6358_ts3a227_max98357\n"},
		{name: "malformed", in: "alias pci:v*\n", keep: []string{"x"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keep := map[string]bool{}
			for _, k := range tt.keep {
				keep[k] = true
			}
			got, err := FilterAlias(strings.NewReader(tt.in), keep)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzFilterAlias(f *testing.F) {
	f.Add("alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n", "e1000")
	f.Add("alias a\n#x\n\nalias a b c d\n", "b")
	f.Fuzz(func(t *testing.T, in, keep string) {
		out, err := FilterAlias(strings.NewReader(in), map[string]bool{keep: true})
		if err != nil {
			return
		}
		// Whatever is kept is well-formed and names the kept module.
		for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if l == "" {
				continue
			}
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "alias" || strings.ReplaceAll(f[len(f)-1], "-", "_") != keep {
				t.Fatalf("kept line %q for module %q", l, keep)
			}
		}
	})
}

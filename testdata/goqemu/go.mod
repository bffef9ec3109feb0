module github.com/qmpsh/qmpsh/testdata/goqemu

go 1.26.8

require github.com/digitalocean/go-qemu v0.0.0-20250212194115-ee9b0668d242

require (
	github.com/digitalocean/go-libvirt v0.0.0-20220804181439-8648fbde413e // indirect
	golang.org/x/sys v0.30.0 // indirect
)

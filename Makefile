# Every target is one line; anything longer lives in hack/.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO ?= go
IMAGE ?= localhost/minicni:$(VERSION)

.PHONY: build test bench lint fmt demo clean deps chaos

build: ; VERSION=$(VERSION) hack/build.sh bin
deps: ; hack/deps.sh
test: deps ; hack/test.sh
bench: deps ; hack/bench.sh
chaos: deps ; hack/chaos.sh
lint: ; hack/lint.sh
fmt: ; gofmt -w $$(git ls-files '*.go')
demo: deps build ; hack/demo.sh $(DEMO_ARGS)
image: ; VERSION=$(VERSION) IMAGE=$(IMAGE) hack/image.sh
e2e: ; hack/e2e.sh
conformance: ; hack/conformance.sh
vm-test: ; hack/vm-test.sh
clean: ; rm -rf bin

module jay/benchmarks/loadgen

go 1.21

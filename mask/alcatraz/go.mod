// Benchmark-only module: bridge's masking against Alcatraz, hoop.dev's
// masking engine, on the same corpus. It is a module of its own so that
// bridge's go.mod does not depend on Alcatraz.
module github.com/seed-3f9f6f16/bridge/mask/alcatraz

go 1.26.8

require github.com/seed-3f9f6f16/bridge v0.0.0

require github.com/hoophq/alcatraz v0.23.0

replace github.com/seed-3f9f6f16/bridge => ../..

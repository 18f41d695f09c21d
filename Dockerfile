FROM scratch
COPY build/cors_filter.wasm ./plugin.wasm

# syntax=docker/dockerfile:1
# entra-webapp as a container for Azure App Service (or any container host).
# Build (needs Docker with BuildKit; App Service runs linux/amd64):
#   docker buildx build --platform linux/amd64 -t entra-webapp .
# or in the cloud without a local Docker: az acr build -r <registry> -t entra-webapp:<tag> .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and target/ between builds: only changed crates rebuild.
# No target-cpu tuning: App Service workers mix CPU models (native code would SIGILL).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p entra-webapp \
 && cp target/release/entra-webapp /entra-webapp

# distroless/cc: glibc, libgcc and CA certificates, no shell; "nonroot" is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /entra-webapp /usr/local/bin/entra-webapp
# App Service routes to WEBSITES_PORT but does not pass it in: the app reads PORT.
ENV PORT=8080 \
    BIND_ADDRESS=0.0.0.0 \
    LOG_FORMAT=json
EXPOSE 8080
USER nonroot
# Exec form: the app is PID 1 and receives SIGTERM itself (it drains and exits within 5 s).
ENTRYPOINT ["/usr/local/bin/entra-webapp", "serve"]

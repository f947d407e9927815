# entra-webapp as a container for Azure App Service (or any container host).
# Plain Dockerfile syntax: builds with the classic builder of `az acr build` as with BuildKit.
#   az acr build -r <registry> -t entra-webapp:<tag> .                   (in the cloud)
#   docker build --platform linux/amd64 -t entra-webapp .                (locally)

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when a manifest or the lock file
# changes, not on every source change. Stub sources let cargo build the dependency graph.
COPY Cargo.toml Cargo.lock ./
COPY crates/entra-auth/Cargo.toml crates/entra-auth/
COPY crates/entra-emulator/Cargo.toml crates/entra-emulator/
COPY crates/entra-webapp/Cargo.toml crates/entra-webapp/
RUN for crate in entra-auth entra-emulator entra-webapp; do \
      mkdir -p crates/$crate/src crates/$crate/benches crates/$crate/examples \
      && echo 'fn main() {}' > crates/$crate/src/main.rs \
      && touch crates/$crate/src/lib.rs; \
    done \
 && echo 'fn main() {}' > crates/entra-webapp/benches/session_records.rs \
 && echo 'fn main() {}' > crates/entra-auth/benches/hot_paths.rs \
 && cargo build --release --locked -p entra-webapp --no-default-features \
 && rm -rf crates
# Then the sources. The container runs `serve` only: no demo, so no emulator inside.
# No target-cpu tuning: App Service workers mix CPU models (native code would SIGILL).
COPY crates crates
RUN touch crates/*/src/lib.rs crates/entra-webapp/src/main.rs \
 && cargo build --release --locked -p entra-webapp --no-default-features \
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

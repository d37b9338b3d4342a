# Switchboard's container image: a static-enough release build on a distroless base.
#   docker build -t switchboard .
#   docker run -p 8080:8080 switchboard serve --listen 0.0.0.0:8080
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin switchboard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
EXPOSE 8080 9090
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--listen", "0.0.0.0:8080"]

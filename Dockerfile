# Build: docker build -t llm-router .
# Run:   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/llm-router/config.yaml:ro llm-router
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p router-bin --locked \
    && strip target/release/llm-router

FROM debian:bookworm-slim
# TLS roots are built into the binary; no system packages are needed.
RUN useradd --system --uid 10001 --no-create-home llm-router \
    && mkdir -p /etc/llm-router
COPY --from=build /src/target/release/llm-router /usr/local/bin/llm-router
COPY config.example.yaml /etc/llm-router/config.yaml
USER 10001
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/llm-router"]
CMD ["--config", "/etc/llm-router/config.yaml"]

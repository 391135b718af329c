# Build: docker build -t llm-router .
# Run:   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/llm-router/config.yaml:ro \
#          -v llm-router-data:/var/lib/llm-router llm-router
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p router-bin --locked \
    && strip target/release/llm-router

FROM debian:bookworm-slim
# TLS roots are built into the binary; no system packages are needed.
RUN useradd --system --uid 10001 --no-create-home llm-router \
    && mkdir -p /etc/llm-router /var/lib/llm-router \
    && chown 10001:10001 /var/lib/llm-router
COPY --from=build /src/target/release/llm-router /usr/local/bin/llm-router
COPY config.example.yaml /etc/llm-router/config.yaml
# The config folder is root's (and often a read-only mount); what the router writes (the
# usage ledger) goes to its data folder, a volume of its own user.
ENV LLM_ROUTER_DATA_DIR=/var/lib/llm-router
# Every interface of the container (the example config alone listens on 127.0.0.1): this wins
# over a config's listen/port, like --listen.
ENV LLM_ROUTER_LISTEN=0.0.0.0:8080
VOLUME /var/lib/llm-router
USER 10001
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/llm-router"]
CMD ["--config", "/etc/llm-router/config.yaml"]

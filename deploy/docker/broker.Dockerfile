# syntax=docker/dockerfile:1
# The broker image. Build from the repository root:
#   docker build -f deploy/docker/broker.Dockerfile -t secretsbroker/broker .
# Runs as the image's non-root user (UID 1654), with a read-only root filesystem: writable paths are
# /tmp (an emptyDir or tmpfs) and /var/lib/secretsbroker (the audit spool; durable storage).
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
# Restore first, from the project files only, so the layer is reused until a dependency changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY protos/ protos/
COPY services/Broker/Broker.csproj services/Broker/
COPY services/Audit/Contracts/Audit.Contracts.csproj services/Audit/Contracts/
RUN dotnet restore services/Broker/Broker.csproj
COPY services/Broker/ services/Broker/
COPY services/Audit/Contracts/ services/Audit/Contracts/
RUN dotnet publish services/Broker/Broker.csproj -c Release -o /app --no-restore -p:UseAppHost=false \
    && rm -f /app/appsettings.Development.json /app/demo-secrets.yaml /app/demo-keys.yaml /app/demo-rotating.yaml /app/policies.dev.yaml

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /var/lib/secretsbroker /etc/secretsbroker && chown -R 1654:1654 /var/lib/secretsbroker
# gRPC on 5151 (HTTP/2), metrics and HTTP health on 9464 (HTTP/1.1). "Urls" (not ASPNETCORE_URLS)
# wins over the Urls of appsettings.json.
ENV Urls=http://0.0.0.0:5151 \
    Broker__Management__Urls=http://0.0.0.0:9464 \
    Broker__Audit__SpoolDirectory=/var/lib/secretsbroker/audit-spool \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1
EXPOSE 5151 9464
USER 1654:1654
VOLUME ["/var/lib/secretsbroker"]
ENTRYPOINT ["dotnet", "SecretsBroker.Broker.dll"]

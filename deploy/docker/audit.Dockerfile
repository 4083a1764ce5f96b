# syntax=docker/dockerfile:1
# The audit service image. Build from the repository root:
#   docker build -f deploy/docker/audit.Dockerfile -t secretsbroker/audit .
# Runs as the image's non-root user (UID 1654), with a read-only root filesystem: writable paths are
# /tmp and /var/lib/secretsbroker-audit (the hash-chained SQLite store; durable storage).
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY protos/ protos/
COPY services/Audit/Service/Audit.Service.csproj services/Audit/Service/
COPY services/Audit/Contracts/Audit.Contracts.csproj services/Audit/Contracts/
RUN dotnet restore services/Audit/Service/Audit.Service.csproj
COPY services/Audit/ services/Audit/
RUN dotnet publish services/Audit/Service/Audit.Service.csproj -c Release -o /app --no-restore -p:UseAppHost=false \
    && rm -f /app/appsettings.Development.json

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /var/lib/secretsbroker-audit && chown -R 1654:1654 /var/lib/secretsbroker-audit
# gRPC (AuditLog, health) on 5161 (HTTP/2), metrics on 9161 (HTTP/1.1).
ENV Kestrel__Endpoints__Grpc__Url=http://0.0.0.0:5161 \
    Kestrel__Endpoints__Metrics__Url=http://0.0.0.0:9161 \
    Audit__Store__Path=/var/lib/secretsbroker-audit/audit.db \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1
EXPOSE 5161 9161
USER 1654:1654
VOLUME ["/var/lib/secretsbroker-audit"]
ENTRYPOINT ["dotnet", "SecretsBroker.Audit.dll"]

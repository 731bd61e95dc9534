# The project image: every component runs from it (`recsys stream`, `recsys serve`, `recsys ui`, ...).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY common/ common/
COPY experiments/ experiments/
COPY producers/ producers/
COPY stream_app/ stream_app/
COPY batch/ batch/
COPY api/ api/
COPY ui/ ui/
COPY stack/ stack/
COPY cli/ cli/
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /var/lib/recsys --create-home recsys \
    && mkdir -p /artifacts /archive /data && chown recsys /artifacts /archive
ENV RECSYS_RUN_DIR=/var/lib/recsys/run RECSYS_DATA_DIR=/data RECSYS_ARTIFACTS_DIR=/artifacts
USER recsys
CMD ["recsys", "--help"]

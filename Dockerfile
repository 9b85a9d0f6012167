# Used by examples/docker-compose.yml (build context: the repository root).
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .

# The API image: locked dependencies, the app, and `tenantdesk` as the entry point.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv==0.13.9"

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY backend backend
COPY tenants tenants
COPY admin admin
COPY alembic alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

ENV PATH="/opt/venv/bin:$PATH" HOST=0.0.0.0 PORT=8000
USER nobody
EXPOSE 8000
CMD ["tenantdesk", "serve", "--no-migrate"]

# BayLink service image: the API, the Celery worker and beat all run from it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY baylink ./baylink
COPY fhir_exchange ./fhir_exchange
COPY consent ./consent
COPY referral ./referral
COPY terminology ./terminology
RUN pip install . && useradd --system --home /app baylink
USER baylink
EXPOSE 8000
CMD ["baylink", "serve", "--host", "0.0.0.0", "--port", "8000"]

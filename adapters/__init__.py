"""What the service needs from the outside world: the SQLAlchemy store and its Alembic
migrations (`adapters.store`), the job queues (`adapters.queue`: in-process threads or
Celery on Redis) and the configuration (`adapters.config`)."""

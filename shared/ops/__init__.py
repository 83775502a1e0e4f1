"""Operations commands for the force's staff: ``python -m shared.ops <command>``.

- ``dead-letters list|replay``: dead letters, embedded or Service Bus (never their bodies);
- ``quarantine list|reingest``: bad feed records, run through the ingest step again;
- ``journey show``: one crime's journeys and audit trail (complaints, subject access requests);
- ``compliance``: the Victims' Code deadlines met and breached over a date range (CSV and HTML).

They work on a local run's folder (``--data``: ``state.db`` and ``queues.db``) or, when
the settings name Table Storage (``StateStorage`` / ``StateStorage__tableServiceUri``),
on the state in Table Storage; dead letters come from Service Bus when the settings
name it (``ServiceBusConnection`` / ``ServiceBusConnection__fullyQualifiedNamespace``).

Listing a whole table (``export``) is allowed here, as in the local run's reports:
these are reports and repairs, never a pipeline step.
"""

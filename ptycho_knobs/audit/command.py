import click

@click.command()
def audit() -> None:
    """(placeholder) Audit source against the registry."""

import click

@click.command()
def train() -> None:
    """(placeholder) Train."""

@click.command()
def drift() -> None:
    """(placeholder) Drift."""

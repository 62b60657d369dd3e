import click

@click.command()
def generate() -> None:
    """(placeholder) Render generated/ from the registry."""

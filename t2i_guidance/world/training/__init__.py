"""How the embedded world's models are made: the generator's and base VLM's trainers, the scorer's data,
and the rebuild and refresh of the shipped scorer. The world's runtime never imports from here."""

"""Runs the embedded model through the engine on varied requests, and keeps what it wrote.

Each request goes through :class:`automatos.Engine` with its default settings (the embedded
Gemma 3 270M and its completion prompt; the store off): simple requests run as one step,
requests with several deliverables as a plan of steps in the request's own words. Every
step's output goes to ``embedded_outputs.jsonl``, with the request, the task as the scorer
sees it (:func:`~automatos.phases.evaluate.scorers.task_of`), the level and the step.

The outputs are not labelled here: a person reads each one and copies it, with its label and
kind, into ``embedded.jsonl`` (``how`` says where it came from), which
``make_quality_set.py`` adds to the quality set; no test needs the model. The lines of
``embedded.jsonl`` marked "engine, one step" and "engine, model-written plan" came from an
earlier engine, whose embedded model wrote its own numbered plans (and copied its prompt's
example into them: "The causes of the French Revolution…"); plans for the embedded model
are now built from the request's structure, so this script no longer writes such steps.

Needs the extra ``local``; about a quarter of an hour on two cores. The model samples with
a fixed seed, so a run on the same engine writes the same outputs; a changed engine or
prompt writes new ones, which need reading again.

    python tests/data/make_embedded_outputs.py [--only N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from automatos import Engine, Settings, WorkflowRequest
from automatos.phases.evaluate.scorers import task_of
from automatos.settings import StoreSettings

# Short questions (a sum, a fact), explanations, lists, how-tos, comparisons, definitions,
# summaries and small pieces of writing: what a new user types first; then requests with
# several deliverables, which the engine plans as steps.
REQUESTS = [
    "What is 17 * 23?",
    "What is 144 / 12?",
    "What is 58 + 77?",
    "What is 1000 - 387?",
    "How much is 15% of 80?",
    "What is the square root of 169?",
    "What is 9 * 8?",
    "What is 2 to the power of 10?",
    "What is the capital of France?",
    "What is the capital of Japan?",
    "Who wrote Romeo and Juliet?",
    "How many legs does a spider have?",
    "What is the chemical symbol for gold?",
    "What is the boiling point of water in Celsius?",
    "How many days are in a leap year?",
    "Which planet is closest to the Sun?",
    "What is the largest ocean on Earth?",
    "Who painted the Mona Lisa?",
    "In which year did World War II end?",
    "What language is spoken in Brazil?",
    "What is the freezing point of water in Fahrenheit?",
    "How many continents are there?",
    "Explain what photosynthesis is.",
    "Explain how a rainbow forms.",
    "Explain what a hash table is.",
    "Explain the difference between weather and climate.",
    "Explain why the sky is blue.",
    "Explain what inflation means in economics.",
    "Explain how vaccines work.",
    "Explain what recursion is in programming.",
    "Describe the water cycle.",
    "Describe how a bill becomes a law in the United States.",
    "List three benefits of regular exercise.",
    "List the planets of the solar system.",
    "List three facts about the Moon.",
    "List four primary sources of renewable energy.",
    "Give three tips for writing a good resume.",
    "Name three programming languages used for web development.",
    "How do I boil an egg?",
    "How do I make a cup of tea?",
    "How do I reverse a string in Python?",
    "How do I create a virtual environment in Python?",
    "How can I improve my sleep?",
    "How does a refrigerator keep food cold?",
    "Compare cats and dogs as pets.",
    "Compare TCP and UDP.",
    "Compare renewable and fossil energy sources.",
    "Define the word 'ephemeral'.",
    "What is machine learning?",
    "What is a black hole?",
    "What is the purpose of a firewall?",
    "What does DNA stand for?",
    "Summarise the plot of Cinderella.",
    "Summarise the causes of World War I.",
    "Write a haiku about autumn.",
    "Write a short thank-you note to a colleague.",
    "Write a Python function that adds two numbers.",
    "Translate 'good morning' into Spanish.",
    "Suggest a name for a bakery.",
    "Why do leaves change colour in autumn?",
    "What is 36 + 47?",
    "What is 125 * 4?",
    "What is 81 / 9?",
    "What is 300 - 145?",
    "What is 7 * 13?",
    "What is 12 * 12?",
    "What is 19 * 21?",
    "What is 3 * (4 + 5)?",
    "What is 45 divided by 5?",
    "What is 6 times 7?",
    "Calculate 18 * 5.",
    "Compute 1024 / 4.",
    "What is the capital of Italy?",
    "What is the capital of Canada?",
    "What is the capital of Australia?",
    "Who wrote Pride and Prejudice?",
    "Who discovered penicillin?",
    "Who was the first person to walk on the Moon?",
    "What is the chemical symbol for iron?",
    "How many sides does a hexagon have?",
    "How many minutes are in an hour?",
    "How many planets are in the solar system?",
    "What is the tallest mountain in the world?",
    "What is the longest river in Africa?",
    "Which gas do plants absorb from the air?",
    "What currency is used in Japan?",
    "Who invented the telephone?",
    "What is the largest planet in the solar system?",
    "In which country are the pyramids of Giza?",
    "What is the smallest prime number?",
    "How many bones are in the adult human body?",
    "What colour do you get by mixing blue and yellow?",
    "Which organ pumps blood through the body?",
    "What does CPU stand for?",
    "What does HTTP stand for?",
    "In what year did the Berlin Wall fall?",
    "What is the opposite of 'ancient'?",
    "Explain how a compiler works.",
    "Explain what an API is.",
    "Explain what gravity is.",
    "Explain how the heart pumps blood.",
    "Explain what a prime number is.",
    "Explain the greenhouse effect.",
    "Explain how a search engine ranks pages.",
    "Explain what supply and demand means.",
    "Describe how bees make honey.",
    "Describe the structure of an atom.",
    "Describe the life cycle of a butterfly.",
    "Explain what an operating system does.",
    "Explain how interest on a loan works.",
    "Explain what a neural network is.",
    "List three uses of copper.",
    "List the primary colours.",
    "List five fruits that are high in vitamin C.",
    "List three causes of air pollution.",
    "Give two examples of mammals that live in water.",
    "Name three famous painters.",
    "List the days of the week.",
    "List three ways to reduce stress.",
    "Give three reasons to learn a second language.",
    "Name the three states of matter.",
    "How do I make pancakes?",
    "How do I sort a list in Python?",
    "How do I change a light bulb?",
    "How do I write a cover letter?",
    "How do I read a file in Python?",
    "How do I plant a tree?",
    "How do I convert Celsius to Fahrenheit?",
    "How do I check my Python version?",
    "How can I learn to type faster?",
    "Compare Python and Java.",
    "Compare electric and petrol cars.",
    "Compare a laptop and a desktop computer.",
    "What is the difference between a list and a tuple in Python?",
    "What is the difference between RAM and storage?",
    "What does 'ubiquitous' mean?",
    "Define the term 'algorithm'.",
    "What is an ecosystem?",
    "What is democracy?",
    "Summarise the story of Romeo and Juliet.",
    "Summarise the theory of evolution.",
    "Write a short poem about the sea.",
    "Write a one-sentence description of a sunset.",
    "Write a slogan for a coffee shop.",
    "Write an email asking for a day off.",
    "Translate 'thank you' into French.",
    "Suggest three names for a pet cat.",
    "Write a SQL query that selects all rows from a table named users.",
    "Why do we have seasons?",
    "Why is exercise good for the heart?",
    "Why does ice float on water?",
    "Why is the sea salty?",
    "Explain how vaccines train the immune system.",
    "Write a short guide to growing tomatoes.",
    "Explain the difference between a virus and a bacterium.",
    "Give three tips for saving money.",
    "Why is the ocean salty?",
    "Plan a three-day trip to Rome.",
    "Explain how a bicycle stays upright.",
    "List the steps to change a flat tyre.",
]
MULTIPART = [
    "List three facts about the Moon and write a haiku about it.",
    "Explain what an API is and give an example of one.",
    "Name three planets and describe the largest one.",
    "Compare Python and Java, then recommend one for beginners.",
    "Explain what photosynthesis is and list the things a plant needs for it.",
    "Find the capital of France and describe one famous landmark there.",
    "List three causes of air pollution and suggest a way to reduce each.",
    "Summarise the plot of Cinderella and name its main characters.",
    "Explain how a rainbow forms and write a short poem about it.",
    "Describe the water cycle and explain why it matters for farming.",
    "Give two tips for saving money and explain why they work.",
    "List the primary colours and explain how to mix green.",
    "Explain what recursion is and write a Python function that uses it.",
    "Name three famous painters and describe the style of each.",
    "Compare cats, dogs and rabbits as pets.",
    "Compare TCP, UDP and QUIC.",
    "Explain what inflation is, list its causes and suggest how to protect savings.",
    "Describe how bees make honey and list three products of the hive.",
    "Write a short poem about the sea and explain its imagery.",
    "Explain the greenhouse effect and list three ways to reduce emissions.",
]
OUT = Path(__file__).with_name("embedded_outputs.jsonl")


async def main(only: int | None) -> None:
    settings = Settings(store=StoreSettings(enabled=False))
    engine = Engine(settings)
    requests = (REQUESTS + MULTIPART)[:only]
    with OUT.open("w", encoding="utf-8") as sink:
        for request in requests:
            started = time.perf_counter()
            result = await engine.run(WorkflowRequest(text=request))
            level = result.level.level.value if result.level else None
            for s in result.plan.subtasks:
                line = {
                    "request": request,
                    "task": task_of(s),
                    "level": level,
                    "step": s.id,
                    "depends_on": list(s.graph.predecessors),
                    "output": result.results[s.id].output or "",
                }
                sink.write(json.dumps(line) + "\n")
            sink.flush()
            took = time.perf_counter() - started
            print(f"{level} {request!r}: {len(result.plan.subtasks)} step(s), {took:.0f} s")
    await engine.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, default=None, help="the first N requests only")
    asyncio.run(main(parser.parse_args().only))

"""The example from the README: two prompt versions compared on 10 runs each.

    python examples/job_names.py                      # offline stand-in model
    MODEL=gpt-4o-mini python examples/job_names.py    # a real model (OPENAI_API_KEY)
"""

import os

from pydantic import BaseModel, Field

from promptlog import Experiment, StructuredBot, experiment, metric, prompt

MODEL = os.environ.get("MODEL", "promptlog/offline")


@prompt("system")
def namer_system(type_of_manager):
    """You are an {{ type_of_manager }}."""


@prompt("user")
def namer_user(job_description):
    """Give me a name for a job that follows this description: {{ job_description }}."""


class JobName(BaseModel):
    name: str = Field(..., description="A job name.")
    description: str = Field(..., description="A job description.")


@experiment
def name_generator():
    bot = StructuredBot(
        namer_system("data science manager"), model_name=MODEL, pydantic_model=JobName,
        temperature=0.7,
    )
    return bot(namer_user("someone who builds full stack AI apps"))


@metric
def name_length(response):
    return len(response.name)


if __name__ == "__main__":
    with Experiment("job-names", num_executions=10) as exp:
        response = name_generator()
        name_length(response)

    print(exp.summary())
    print(exp.to_pandas()[["execution_index", "status", "name_length"]])

import { SluiceError } from '../errors.ts';

/** The state of one key in mapWithState, as Spark's State. */
export interface State<S> {
  exists(): boolean;
  /** The state; throws when there is none (check `exists()` or use `getOption()`). */
  get(): S;
  getOption(): S | undefined;
  update(state: S): void;
  remove(): void;
  /** True when the key is being called because it timed out; it will be removed afterwards. */
  isTimingOut(): boolean;
}

export class StateImpl<S> implements State<S> {
  value: S | undefined;
  private defined = false;
  private timingOut = false;
  updated = false;
  removed = false;

  reset(defined: boolean, value: S | undefined, timingOut: boolean): void {
    this.defined = defined;
    this.value = value;
    this.timingOut = timingOut;
    this.updated = false;
    this.removed = false;
  }
  exists(): boolean {
    return this.defined;
  }
  get(): S {
    if (!this.defined)
      throw new SluiceError('State is not set: check state.exists() or use state.getOption()');
    return this.value as S;
  }
  getOption(): S | undefined {
    return this.defined ? this.value : undefined;
  }
  update(state: S): void {
    if (this.removed) throw new SluiceError('Cannot update the state after it has been removed');
    if (this.timingOut) throw new SluiceError('Cannot update the state of a key that is timing out');
    this.value = state;
    this.defined = true;
    this.updated = true;
  }
  remove(): void {
    if (this.removed) throw new SluiceError('Cannot remove the state twice');
    this.defined = false;
    this.value = undefined;
    this.removed = true;
    this.updated = false;
  }
  isTimingOut(): boolean {
    return this.timingOut;
  }
}

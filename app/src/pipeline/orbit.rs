//! The camera as a person moves it: yaw and pitch around a target, distance by zoom. Pure, so
//! the framing and the limits are tested natively; the scene turns it into a three-d camera.

use super::layout::P3;

/// Vertical field of view, radians.
pub const FOV_Y: f32 = 0.785;
const PITCH_LIMIT: f32 = 1.35;
/// Radians per pixel dragged.
const DRAG_SPEED: f32 = 0.006;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Orbit {
    pub target: P3,
    pub yaw: f32,
    pub pitch: f32,
    pub distance: f32,
    /// The distance that frames everything; zoom stays within a range around it.
    pub fit: f32,
}

impl Orbit {
    /// Looks at the box `min..max` from the front, slightly from above and the right, far enough
    /// back that all of it fits a viewport of the given aspect (width / height).
    pub fn framing(min: P3, max: P3, aspect: f32) -> Self {
        let target = [
            (min[0] + max[0]) / 2.0,
            (min[1] + max[1]) / 2.0,
            (min[2] + max[2]) / 2.0,
        ];
        let half_w = (max[0] - min[0]) / 2.0;
        let half_h = (max[1] - min[1]) / 2.0;
        let half_d = (max[2] - min[2]) / 2.0;
        let tan = (FOV_Y / 2.0).tan();
        let aspect = if aspect.is_finite() && aspect > 0.05 {
            aspect
        } else {
            1.0
        };
        let fit = (half_h / tan).max(half_w / (tan * aspect)) * 1.08 + half_d;
        Self {
            target,
            yaw: 0.12,
            pitch: 0.18,
            distance: fit,
            fit,
        }
    }

    /// The camera position.
    pub fn eye(&self) -> P3 {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        [
            self.target[0] + self.distance * sy * cp,
            self.target[1] + self.distance * sp,
            self.target[2] + self.distance * cy * cp,
        ]
    }

    /// A mouse drag of `dx`, `dy` pixels turns the view; pitch stops short of the poles.
    pub fn drag(&mut self, dx: f32, dy: f32) {
        if !(dx.is_finite() && dy.is_finite()) {
            return;
        }
        self.yaw -= dx * DRAG_SPEED;
        self.pitch = (self.pitch + dy * DRAG_SPEED).clamp(-PITCH_LIMIT, PITCH_LIMIT);
    }

    /// A wheel turn (`deltaY` in pixels; positive = away) zooms, between a fifth and three
    /// times the framing distance.
    pub fn zoom(&mut self, delta: f32) {
        if !delta.is_finite() {
            return;
        }
        let factor = (delta.clamp(-500.0, 500.0) * 0.0015).exp();
        self.distance = (self.distance * factor).clamp(self.fit * 0.2, self.fit * 3.0);
    }

    /// Keeps the user's angles but frames a new box (the fleet grew or the canvas resized).
    pub fn reframe(&mut self, min: P3, max: P3, aspect: f32) {
        let fresh = Self::framing(min, max, aspect);
        let zoom = self.distance / self.fit;
        self.target = fresh.target;
        self.fit = fresh.fit;
        self.distance = fresh.fit * zoom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_sees_the_whole_box() {
        let o = Orbit::framing([-8.0, -3.0, -1.0], [10.0, 3.0, 1.0], 16.0 / 9.0);
        let eye = o.eye();
        // From the eye, both x extremes are inside the horizontal field of view.
        let tan_h = (FOV_Y / 2.0).tan() * 16.0 / 9.0;
        for x in [-8.0f32, 10.0] {
            let dx = (x - eye[0]).abs();
            let dz = eye[2];
            assert!(dx / dz <= tan_h * 1.05, "x {x}: {}", dx / dz);
        }
        assert!(eye[1] > o.target[1], "a little from above");
    }

    #[test]
    fn drag_turns_and_stops_short_of_the_pole() {
        let mut o = Orbit::framing([-1.0; 3], [1.0; 3], 1.0);
        let before = o.eye();
        o.drag(100.0, 0.0);
        assert_ne!(o.eye(), before);
        o.drag(0.0, 1e6);
        assert!(o.pitch <= PITCH_LIMIT);
        o.drag(f32::NAN, 1.0);
        assert!(o.eye().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn zoom_stays_in_range_and_reframe_keeps_it() {
        let mut o = Orbit::framing([-1.0; 3], [1.0; 3], 1.0);
        for _ in 0..100 {
            o.zoom(-500.0);
        }
        assert!((o.distance - o.fit * 0.2).abs() < 1e-3);
        o.zoom(200.0);
        let ratio = o.distance / o.fit;
        o.reframe([-10.0; 3], [10.0; 3], 2.0);
        assert!((o.distance / o.fit - ratio).abs() < 1e-4);
        o.zoom(f32::INFINITY);
        assert!(o.distance.is_finite());
    }

    #[test]
    fn a_zero_sized_canvas_does_not_break_the_camera() {
        let o = Orbit::framing([-1.0; 3], [1.0; 3], 0.0);
        assert!(o.distance.is_finite() && o.distance > 0.0);
    }
}

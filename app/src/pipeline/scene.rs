//! The three-d scene in three draws: everything that stands still (boxes, worker nodes, the bus,
//! the tubes) baked into one mesh when a snapshot arrives; the particles and sparks, instanced
//! and moved every frame; the bus glow.
//!
//! Why baked and not instanced: under SwiftShader (no GPU) each instance costs ~40 µs, so 200
//! workers' 3,800 instances took 150–230 ms a frame. The baked mesh is one instance however many
//! tubes there are, and the particles stay within a fixed instance budget.

use three_d::*;

use shared::status::LinkStatus;
use shared::NodesSnapshot;

use super::layout::{self, Layout, BUS_RADIUS, NODE_HALF, P3, TUBE_RADIUS};
use super::orbit::{Orbit, FOV_Y};

/// One particle every this many world units of tube, at most.
const PARTICLE_SPACING: f32 = 1.6;
/// Instances of particles and sparks per frame, all tubes together; with many workers the
/// particles spread out instead of costing more.
const PARTICLE_BUDGET: f32 = 320.0;
const PARTICLE_RADIUS: f32 = 0.13;
const SPARKS_PER_CUT: usize = 6;

const BACKGROUND: [f32; 3] = [0.043, 0.067, 0.125];
const NAS_COLOUR: Srgba = Srgba::new_opaque(0x47, 0x55, 0x69);
const STOCK_COLOUR: Srgba = Srgba::new_opaque(0x0e, 0x74, 0x90);
const WINDOWS_COLOUR: Srgba = Srgba::new_opaque(0x1e, 0x29, 0x3b);
const BUS_OK: Srgba = Srgba::new_opaque(0x22, 0xd3, 0xee);
const SPARK_COLOUR: Srgba = Srgba::new_opaque(0xfd, 0xe0, 0x47);

pub struct Scene {
    context: Context,
    camera: Camera,
    layout: Layout,
    redis_ok: bool,
    still: Gm<Mesh, ColorMaterial>,
    particles: Gm<InstancedMesh, ColorMaterial>,
    glow: Gm<Mesh, ColorMaterial>,
    cube: Unit,
    tube: Unit,
    /// World units between particles on a tube for the current fleet.
    spacing: f32,
    /// Reused every frame so the particle update does not allocate positions.
    scratch: Vec<P3>,
}

fn v(p: P3) -> Vec3 {
    vec3(p[0], p[1], p[2])
}

fn status_colour(status: LinkStatus) -> Srgba {
    let [r, g, b] = status.rgb();
    Srgba::new_opaque(r, g, b)
}

/// Brighter than the tube, so particles read against it.
fn particle_colour(status: LinkStatus) -> Srgba {
    let [r, g, b] = status.rgb();
    let lift = |c: u8| c + ((255 - c) as f32 * 0.55) as u8;
    Srgba::new_opaque(lift(r), lift(g), lift(b))
}

fn opaque() -> ColorMaterial {
    ColorMaterial {
        color: Srgba::WHITE,
        texture: None,
        render_states: RenderStates::default(),
        is_transparent: false,
    }
}

/// The unit cylinder (x from 0 to 1, radius 1) stretched from `a` to `b`.
fn cylinder(a: P3, b: P3, radius: f32) -> Mat4 {
    let d = v(b) - v(a);
    let len = d.magnitude();
    if len < 1e-5 {
        return Mat4::from_scale(0.0);
    }
    let dir = d / len;
    // from_dir_to_dir is undefined for exactly opposite directions.
    let rotation = if dir.x < -0.9999 {
        Mat4::from_angle_y(degrees(180.0))
    } else {
        rotation_matrix_from_dir_to_dir(vec3(1.0, 0.0, 0.0), dir)
    };
    Mat4::from_translation(v(a)) * rotation * Mat4::from_nonuniform_scale(len, radius, radius)
}

fn cube(centre: P3, half: P3) -> Mat4 {
    Mat4::from_translation(v(centre)) * Mat4::from_nonuniform_scale(half[0], half[1], half[2])
}

/// A unit mesh ready to be copied many times into a baked mesh.
struct Unit {
    positions: Vec<Vec3>,
    indices: Vec<u32>,
    /// Per vertex brightness: faces turned from the light are darker, so boxes read as solid
    /// without lights, while unshaded tubes keep their exact status colours.
    shade: Vec<f32>,
}

impl Unit {
    fn of(mut mesh: CpuMesh, shaded: bool) -> Self {
        let positions = mesh.positions.to_f32();
        let indices = mesh
            .indices
            .to_u32()
            .unwrap_or_else(|| (0..positions.len() as u32).collect());
        let shade = if shaded {
            if mesh.normals.is_none() {
                mesh.compute_normals();
            }
            let light = vec3(0.35, 0.8, 0.5).normalize();
            mesh.normals
                .iter()
                .flatten()
                .map(|n| 0.55 + 0.45 * n.dot(light).max(0.0))
                .collect()
        } else {
            vec![1.0; positions.len()]
        };
        Self {
            positions,
            indices,
            shade,
        }
    }
}

/// Copies of unit meshes, each moved by its matrix and painted its colour, as one mesh.
fn bake<'a>(parts: impl Iterator<Item = (&'a Unit, Mat4, Srgba)>) -> CpuMesh {
    let (mut positions, mut colors, mut indices) = (Vec::new(), Vec::new(), Vec::new());
    for (unit, m, colour) in parts {
        let base = positions.len() as u32;
        positions.extend(
            unit.positions
                .iter()
                .map(|p| (m * p.extend(1.0)).truncate()),
        );
        colors.extend(unit.shade.iter().map(|s| {
            let f = |c: u8| (c as f32 * s) as u8;
            Srgba::new_opaque(f(colour.r), f(colour.g), f(colour.b))
        }));
        indices.extend(unit.indices.iter().map(|i| base + i));
    }
    CpuMesh {
        positions: Positions::F32(positions),
        indices: Indices::U32(indices),
        colors: Some(colors),
        ..Default::default()
    }
}

fn instanced(context: &Context, mesh: &CpuMesh) -> Gm<InstancedMesh, ColorMaterial> {
    let empty = Instances {
        transformations: Vec::new(),
        texture_transformations: None,
        colors: Some(Vec::new()),
    };
    Gm::new(InstancedMesh::new(context, &empty, mesh), opaque())
}

impl Scene {
    pub fn new(context: Context, viewport: Viewport) -> Self {
        let camera = Camera::new_perspective(
            viewport,
            vec3(0.0, 0.0, 20.0),
            vec3(0.0, 0.0, 0.0),
            vec3(0.0, 1.0, 0.0),
            radians(FOV_Y),
            0.1,
            500.0,
        );
        let glow_material = ColorMaterial {
            color: Srgba::new(0x22, 0xd3, 0xee, 60),
            texture: None,
            render_states: RenderStates {
                write_mask: WriteMask::COLOR,
                blend: Blend::TRANSPARENCY,
                ..Default::default()
            },
            is_transparent: true,
        };
        let empty = NodesSnapshot {
            redis_ok: true,
            paused: false,
            paused_reason: None,
            generated_at: String::new(),
            stale_since: None,
            workers: Vec::new(),
            links: Vec::new(),
            summary: None,
            page: None,
        };
        let cube = Unit::of(CpuMesh::cube(), true);
        let mut scene = Self {
            still: Gm::new(
                Mesh::new(
                    &context,
                    &bake(std::iter::once((&cube, Mat4::identity(), NAS_COLOUR))),
                ),
                opaque(),
            ),
            particles: instanced(&context, &CpuMesh::cube()),
            cube,
            tube: Unit::of(CpuMesh::cylinder(10), false),
            spacing: PARTICLE_SPACING,
            glow: Gm::new(Mesh::new(&context, &CpuMesh::cylinder(16)), glow_material),
            context,
            camera,
            layout: Layout::of(&empty),
            redis_ok: true,
            scratch: Vec::new(),
        };
        scene.update(&empty);
        scene
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Rebuilds the still parts from a new snapshot.
    pub fn update(&mut self, snap: &NodesSnapshot) {
        self.layout = Layout::of(snap);
        self.redis_ok = snap.redis_ok;
        let l = &self.layout;

        let mut still = vec![
            (&self.cube, cube(l.nas.centre, l.nas.half), NAS_COLOUR),
            (
                &self.cube,
                cube(l.nas_stock.centre, l.nas_stock.half),
                STOCK_COLOUR,
            ),
            (
                &self.cube,
                cube(l.windows.centre, l.windows.half),
                WINDOWS_COLOUR,
            ),
        ];
        still.extend(l.places.iter().map(|p| {
            (
                &self.cube,
                cube(p.node, [NODE_HALF; 3]),
                status_colour(p.status),
            )
        }));

        let bus_colour = if self.redis_ok {
            BUS_OK
        } else {
            status_colour(LinkStatus::Down)
        };
        still.push((
            &self.tube,
            cylinder(l.bus.0, l.bus.1, BUS_RADIUS),
            bus_colour,
        ));
        let mut flowing = 0.0;
        for place in &l.places {
            if let Some(tube) = &place.tube {
                let colour = status_colour(tube.status);
                still.extend(
                    tube.segments()
                        .into_iter()
                        .map(|(a, b)| (&self.tube, cylinder(a, b, TUBE_RADIUS), colour)),
                );
                if !tube.broken {
                    flowing += tube.length();
                }
            }
        }
        self.still = Gm::new(Mesh::new(&self.context, &bake(still.into_iter())), opaque());
        self.spacing = PARTICLE_SPACING.max(flowing / PARTICLE_BUDGET);

        self.glow
            .geometry
            .set_transformation(cylinder(l.bus.0, l.bus.1, BUS_RADIUS * 2.2));
        self.glow.material.color = if self.redis_ok {
            Srgba::new(0x22, 0xd3, 0xee, 60)
        } else {
            Srgba::new(0xef, 0x44, 0x44, 70)
        };
    }

    /// Moves the particles and sparks to time `t` (seconds).
    fn animate(&mut self, t: f32) {
        let mut instances = Vec::new();
        for place in &self.layout.places {
            let Some(tube) = &place.tube else { continue };
            if tube.broken {
                let cut = tube.cut();
                for k in 0..SPARKS_PER_CUT {
                    let (dx, dy, dz) = spark_offset(t, k);
                    let size = 0.05 + 0.05 * ((t * 9.0 + k as f32).sin().abs());
                    let at = [cut[0] + dx, cut[1] + dy, cut[2] + dz];
                    instances.push((cube(at, [size; 3]), SPARK_COLOUR));
                }
                continue;
            }
            self.scratch.clear();
            layout::particles(tube, place.flow, t, self.spacing, &mut self.scratch);
            let colour = particle_colour(tube.status);
            instances.extend(
                self.scratch
                    .iter()
                    .map(|p| (cube(*p, [PARTICLE_RADIUS; 3]), colour)),
            );
        }
        self.particles.geometry.set_instances(&split(instances));
    }

    /// Draws one frame at time `t` seen from `orbit`.
    pub fn render(&mut self, t: f32, viewport: Viewport, orbit: &Orbit) {
        self.camera.set_viewport(viewport);
        let eye = orbit.eye();
        self.camera
            .set_view(v(eye), v(orbit.target), vec3(0.0, 1.0, 0.0));
        self.animate(t);
        let [r, g, b] = BACKGROUND;
        RenderTarget::screen(&self.context, viewport.width, viewport.height)
            .clear(ClearState::color_and_depth(r, g, b, 1.0, 1.0))
            .render(
                &self.camera,
                self.still
                    .into_iter()
                    .chain(&self.particles)
                    .chain(&self.glow),
                &[],
            );
    }

    /// Where a world point lands on the canvas, in physical pixels from the top left; None when
    /// it is behind the camera.
    pub fn project(&self, p: P3) -> Option<(f32, f32)> {
        let clip = self.camera.projection() * self.camera.view() * v(p).extend(1.0);
        if clip.w <= 1e-4 {
            return None;
        }
        let vp = self.camera.viewport();
        let x = (clip.x / clip.w + 1.0) / 2.0 * vp.width as f32;
        let y = (1.0 - clip.y / clip.w) / 2.0 * vp.height as f32;
        Some((x, y))
    }
}

/// Sparks jump around the cut: a cheap deterministic jitter from time and index.
fn spark_offset(t: f32, k: usize) -> (f32, f32, f32) {
    let phase = (t * 7.0).floor() + k as f32 * 1.7;
    let h = |s: f32| ((phase * s).sin() * 43758.547).fract() - 0.5;
    (h(12.9898) * 0.6, h(78.233) * 0.6, h(37.719) * 0.6)
}

fn split(items: Vec<(Mat4, Srgba)>) -> Instances {
    let (transformations, colors) = items.into_iter().unzip();
    Instances {
        transformations,
        texture_transformations: None,
        colors: Some(colors),
    }
}
